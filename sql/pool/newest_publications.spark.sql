-- The newest snapshot published of each surface of a namespace (Spark: a rerun's publish
-- is another row of the same version; its newest row counts).
SELECT surface, MAX(version) AS version,
       MAX_BY(as_of, STRUCT(version, published_at)) AS as_of,
       MAX_BY(items, STRUCT(version, published_at)) AS items
FROM bandit_publications
WHERE namespace = :namespace
GROUP BY surface
ORDER BY surface
