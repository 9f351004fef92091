-- The rejected rows of one ingest batch (the temporary view bandit_rejects_batch) that the
-- lake does not hold yet in :rejected_table (bandit_rewards_rejected or
-- item_catalog_rejected, the committed rows): one per raw row (raw_hash), as on the other
-- engines.
-- timestamps: accepted_at
SELECT s.raw_hash, s.raw, s.reason, s.source, s.line_number, :accepted_at AS rejected_at
FROM (
    SELECT b.*, ROW_NUMBER() OVER (PARTITION BY b.raw_hash ORDER BY b.line_number) AS nth
    FROM bandit_rejects_batch AS b
) AS s
WHERE s.nth = 1
  AND NOT EXISTS (SELECT 1 FROM IDENTIFIER(:rejected_table) AS r WHERE r.raw_hash = s.raw_hash)
