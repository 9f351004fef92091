-- The rows a batch writes into bandit_rewards_rejected: its new rejected rows
-- (ingest/stage_new_rejects.spark.sql) under the batch's id; like its events, they count
-- once the batch is committed.
SELECT raw_hash, raw, reason, source, line_number, rejected_at, :batch_id AS batch_id
FROM bandit_new_rejects
