-- The whole catalog after one catalog batch (the temporary view bandit_catalog_batch, in
-- arrival order: ordinal) is applied to the committed catalog: its items upserted by
-- (namespace, item_id), the last row of an item in the batch winning, first_seen_at the
-- earliest value ever seen (the load time when none is given) and updated_at the load
-- time; every other item as it was. As ingest/upsert_catalog.sql on the other engines.
-- timestamps: loaded_at
WITH incoming AS (
    SELECT namespace, item_id, title, category, price, availability, freshness_index,
           MIN(COALESCE(first_seen_at, :loaded_at))
               OVER (PARTITION BY namespace, item_id) AS first_seen_at,
           ROW_NUMBER() OVER (PARTITION BY namespace, item_id ORDER BY ordinal DESC) AS nth
    FROM bandit_catalog_batch
)
SELECT i.namespace, i.item_id, i.title, i.category, i.price, i.availability,
       i.freshness_index, LEAST(c.first_seen_at, i.first_seen_at) AS first_seen_at,
       CAST(:loaded_at AS TIMESTAMP) AS updated_at
FROM incoming AS i
LEFT JOIN item_catalog AS c ON c.namespace = i.namespace AND c.item_id = i.item_id
WHERE i.nth = 1
UNION ALL
SELECT c.namespace, c.item_id, c.title, c.category, c.price, c.availability,
       c.freshness_index, c.first_seen_at, c.updated_at
FROM item_catalog AS c
LEFT ANTI JOIN incoming AS i ON i.namespace = c.namespace AND i.item_id = c.item_id
