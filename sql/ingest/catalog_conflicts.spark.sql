-- After losing the race for a sequence number: how many catalog loads committed since
-- sequence :sequence. A catalog batch writes the whole catalog, so any is a conflict
-- (and any batch of rejected catalog rows): the batch is staged again over what they left.
SELECT COUNT(*) FROM IDENTIFIER(:database || '.bandit_ingest_batches')
WHERE kind IN ('catalog', 'catalog_rejects') AND sequence > :sequence
