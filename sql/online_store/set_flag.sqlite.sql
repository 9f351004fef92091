INSERT OR REPLACE INTO flags (namespace, name, value) VALUES (:namespace, :name, :value);
