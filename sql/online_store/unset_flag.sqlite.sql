-- Remove a stored flag: the settings decide again.
DELETE FROM flags WHERE namespace = :namespace AND name = :name;
