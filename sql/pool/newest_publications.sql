-- The newest snapshot published of each surface of a namespace.
SELECT surface, version, as_of, items
FROM bandit_publications AS p
WHERE namespace = :namespace
  AND version = (
      SELECT MAX(version) FROM bandit_publications
      WHERE namespace = p.namespace AND surface = p.surface
  )
ORDER BY surface;
