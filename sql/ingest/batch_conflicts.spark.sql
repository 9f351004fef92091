-- After losing the race for a sequence number: how many of this batch's new events
-- (bandit_new_events) and rejected rows (bandit_new_rejects) the batches committed since
-- sequence :sequence already hold. None: the batch commits at the next number as it is.
-- Some: its written rows are abandoned (never committed) and it is staged and written
-- again against the new state.
-- timestamps: horizon_start
SELECT (
    SELECT COUNT(*) FROM bandit_new_events AS n
    WHERE n.event_id IN (
        SELECT r.event_id
        FROM IDENTIFIER(:database || '.bandit_rewards') AS r
        JOIN IDENTIFIER(:database || '.bandit_ingest_batches') AS b ON b.batch_id = r.batch_id
        WHERE b.sequence > :sequence
          AND r.ingested_hour >= date_trunc('HOUR', :horizon_start)
    )
) + (
    SELECT COUNT(*) FROM bandit_new_rejects AS n
    WHERE n.raw_hash IN (
        SELECT r.raw_hash
        FROM IDENTIFIER(:database || '.bandit_rewards_rejected') AS r
        JOIN IDENTIFIER(:database || '.bandit_ingest_batches') AS b ON b.batch_id = r.batch_id
        WHERE b.sequence > :sequence
    )
) AS conflicts
