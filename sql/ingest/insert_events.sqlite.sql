-- Insert one batch of validated events (SQLite). A known event_id is skipped
-- (idempotent ingest); ingested_at is the warehouse's clock unless a historical import
-- passes one.
INSERT INTO bandit_rewards (
    event_id, event_type, occurred_at, ingested_at, namespace, surface, user_id,
    request_id, item_id, slot, explore, bandit_policy_id, experiment, variant
)
VALUES (
    ?, ?, ?, COALESCE(?, strftime('%Y-%m-%d %H:%M:%f000', 'now')), ?, ?, ?,
    ?, ?, ?, ?, ?, ?, ?
)
ON CONFLICT (event_id) DO NOTHING;
