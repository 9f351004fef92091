-- The current snapshot of a (namespace, surface): the pointer and the blob it names, in
-- one statement, so one committed state.
SELECT s.blob
FROM current_snapshot AS c
JOIN snapshots AS s
  ON s.namespace = c.namespace AND s.surface = c.surface AND s.version = c.version
WHERE c.namespace = :namespace AND c.surface = :surface;
