-- The alert episodes of a namespace that overlap the report's range.
-- timestamps: since, until
SELECT alert_id, kind, surface, opened_at, resolved_at, explore_impressions, explore_ctr,
       baseline_ctr
FROM bandit_alerts
WHERE namespace = :namespace AND opened_at <= :until
  AND (resolved_at IS NULL OR resolved_at >= :since)
ORDER BY opened_at, alert_id;
