-- The impression-key index gains ingested_at as its last column (Alembic revision 0010).
-- The window job asks, for every impression key a window touches, whether the key has
-- rows ingested before the window (late outcomes, re-sent impressions): with ingested_at
-- in the index that question is answered from the index alone, and the window's own rows
-- are never fetched twice (docs/performance.md). Every query that used the old index
-- uses its first four columns as before.
--
-- On a large table CREATE INDEX holds off ingestion while it builds; an operator who
-- cannot pause ingestion builds it first with CREATE INDEX CONCURRENTLY under the same
-- name, and this revision then only drops the old index.
CREATE INDEX IF NOT EXISTS bandit_rewards_impression_key_time_idx
    ON bandit_rewards (namespace, surface, request_id, item_id, ingested_at);

DROP INDEX IF EXISTS bandit_rewards_impression_key_idx;
