-- The rows a catalog batch writes into item_catalog: the whole catalog it leaves behind
-- (ingest/stage_catalog.spark.sql), under the batch's id.
SELECT namespace, item_id, title, category, price, availability, freshness_index,
       first_seen_at, updated_at, :batch_id AS batch_id
FROM bandit_new_catalog
