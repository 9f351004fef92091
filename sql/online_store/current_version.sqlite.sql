-- The version the pointer of a (namespace, surface) names.
SELECT version FROM current_snapshot WHERE namespace = :namespace AND surface = :surface;
