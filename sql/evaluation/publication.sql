-- The record of one published snapshot: the window its pool was built for, its size.
SELECT as_of, items
FROM bandit_publications
WHERE namespace = :namespace AND surface = :surface AND version = :version;
