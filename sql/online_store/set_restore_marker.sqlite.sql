INSERT OR REPLACE INTO restore_marker (namespace, restored_at)
VALUES (:namespace, :restored_at);
