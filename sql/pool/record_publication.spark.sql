-- Record a snapshot written to the online store (Spark: appended; the newest
-- published_at of a version counts).
-- timestamps: as_of, published_at
INSERT INTO bandit_publications
VALUES (:namespace, :surface, :version, :as_of, :items, :published_at);
