-- The sequence number of the newest committed ingest batch (NULL before the first): the
-- next commit claims the one after it.
SELECT MAX(sequence) FROM IDENTIFIER(:database || '.bandit_ingest_batches')
