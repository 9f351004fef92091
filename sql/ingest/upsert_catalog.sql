-- Upsert catalog rows by (namespace, item_id). first_seen_at keeps the earliest value
-- ever seen; updated_at is the time of this load.
-- timestamps: first_seen_at, loaded_at
INSERT INTO item_catalog (
    namespace, item_id, title, category, price, availability, freshness_index,
    first_seen_at, updated_at
)
VALUES (
    :namespace, :item_id, :title, :category, :price, :availability, :freshness_index,
    COALESCE(:first_seen_at, :loaded_at), :loaded_at
)
ON CONFLICT (namespace, item_id) DO UPDATE SET
    title = excluded.title,
    category = excluded.category,
    price = excluded.price,
    availability = excluded.availability,
    freshness_index = excluded.freshness_index,
    first_seen_at = CASE
        WHEN item_catalog.first_seen_at IS NULL THEN excluded.first_seen_at
        WHEN excluded.first_seen_at < item_catalog.first_seen_at THEN excluded.first_seen_at
        ELSE item_catalog.first_seen_at
    END,
    updated_at = excluded.updated_at;
