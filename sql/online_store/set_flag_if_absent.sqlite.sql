-- Set a flag only where none is stored (the restore's write: a flag set since is kept).
INSERT INTO flags (namespace, name, value) VALUES (:namespace, :name, :value)
ON CONFLICT (namespace, name) DO NOTHING;
