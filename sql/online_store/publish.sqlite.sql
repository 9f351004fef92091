-- Publish one snapshot of a (namespace, surface), in one transaction: store it, mark
-- the one it replaces, move the pointer, drop replaced snapshots past the grace period.
INSERT OR REPLACE INTO snapshots (namespace, surface, version, published_at, replaced_at, blob)
VALUES (:namespace, :surface, :version, :published_at, NULL, :blob);

UPDATE snapshots SET replaced_at = :published_at
WHERE namespace = :namespace AND surface = :surface
  AND version <> :version AND replaced_at IS NULL;

INSERT OR REPLACE INTO current_snapshot (namespace, surface, version)
VALUES (:namespace, :surface, :version);

DELETE FROM snapshots WHERE replaced_at IS NOT NULL AND replaced_at < :grace_cutoff;
