-- The reward events a posterior as of :until could train on, back to :since (by
-- occurrence): impressions and outcomes, times as epoch seconds.
-- timestamps: since, until
SELECT surface, request_id, item_id, event_type, explore, variant,
       bandit_epoch(occurred_at) AS occurred, bandit_epoch(ingested_at) AS ingested
FROM bandit_rewards
WHERE namespace = :namespace AND ingested_at < :until AND occurred_at >= :since;
