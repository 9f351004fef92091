-- When the namespace was last seeded from the warehouse's record; no row: never since
-- the store was created.
SELECT restored_at FROM restore_marker WHERE namespace = :namespace;
