-- Record a kill-switch state only where none is stored (the restore's write: a trip or a
-- reset written since is kept).
INSERT INTO killswitch (namespace, surface, state) VALUES (:namespace, :surface, :state)
ON CONFLICT (namespace, surface) DO NOTHING;
