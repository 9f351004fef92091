-- The impression-key index gains ingested_at as its last column (Alembic revision 0010);
-- same reasons as 0010_impression_key_time.postgresql.sql.
CREATE INDEX IF NOT EXISTS bandit_rewards_impression_key_time_idx
    ON bandit_rewards (namespace, surface, request_id, item_id, ingested_at);

DROP INDEX IF EXISTS bandit_rewards_impression_key_idx;
