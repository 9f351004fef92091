-- Record a snapshot written to the online store (again: the latest write counts).
-- timestamps: as_of, published_at
INSERT INTO bandit_publications (namespace, surface, version, as_of, items, published_at)
VALUES (:namespace, :surface, :version, :as_of, :items, :published_at)
ON CONFLICT (namespace, surface, version) DO UPDATE SET
    items = excluded.items,
    published_at = excluded.published_at;
