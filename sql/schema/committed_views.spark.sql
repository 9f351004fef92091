-- The committed events and rejected rows, as the session's temporary views named like the
-- tables (a temporary view comes before a table of the same name), so that every
-- statement of the warehouse reads only the rows of committed ingest batches: a batch
-- whose commit file is missing (an ingest that died before its commit, or lost a race and
-- wrote again) is never read. The tables themselves are named with their database.
CREATE OR REPLACE TEMPORARY VIEW bandit_rewards AS
SELECT r.*
FROM IDENTIFIER(:database || '.bandit_rewards') AS r
LEFT SEMI JOIN IDENTIFIER(:database || '.bandit_ingest_batches') AS b
  ON b.batch_id = r.batch_id;

CREATE OR REPLACE TEMPORARY VIEW bandit_rewards_rejected AS
SELECT r.*
FROM IDENTIFIER(:database || '.bandit_rewards_rejected') AS r
LEFT SEMI JOIN IDENTIFIER(:database || '.bandit_ingest_batches') AS b
  ON b.batch_id = r.batch_id;

CREATE OR REPLACE TEMPORARY VIEW item_catalog_rejected AS
SELECT r.*
FROM IDENTIFIER(:database || '.item_catalog_rejected') AS r
LEFT SEMI JOIN IDENTIFIER(:database || '.bandit_ingest_batches') AS b
  ON b.batch_id = r.batch_id;

-- The catalog: the whole catalog the newest committed catalog load left behind.
CREATE OR REPLACE TEMPORARY VIEW item_catalog AS
SELECT c.*
FROM IDENTIFIER(:database || '.item_catalog') AS c
WHERE c.batch_id = (
    SELECT MAX_BY(b.batch_id, b.sequence)
    FROM IDENTIFIER(:database || '.bandit_ingest_batches') AS b
    WHERE b.kind = 'catalog'
);
