-- A namespace's stored feature flags.
SELECT name, value FROM flags WHERE namespace = :namespace;
