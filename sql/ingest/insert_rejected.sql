-- Keep a row that failed validation beside its reason; the same raw row lands once.
-- {table} is bandit_rewards_rejected or item_catalog_rejected.
INSERT INTO {table} (raw_hash, raw, reason, source, line_number)
VALUES (:raw_hash, :raw, :reason, :source, :line_number)
ON CONFLICT (raw_hash) DO NOTHING;
