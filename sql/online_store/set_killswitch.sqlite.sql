INSERT OR REPLACE INTO killswitch (namespace, surface, state)
VALUES (:namespace, :surface, :state);
