-- The rows of bandit_rewards that became visible in one window (the new rows a run sees).
-- timestamps: as_of, window_start
SELECT event_id, event_type, occurred_at, ingested_at, namespace, surface, user_id,
       request_id, item_id, slot, explore, variant
FROM bandit_rewards
WHERE ingested_at >= :window_start AND ingested_at < :as_of;
