-- How many catalog items each exclusion reason removed (NULL: eligible).
SELECT excluded_reason, COUNT(*) AS items
FROM ({{ include pool/candidates }}) AS pool
GROUP BY excluded_reason;
