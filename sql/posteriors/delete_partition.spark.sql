-- Before a window is (re)computed, its run record goes: a window without one is not
-- materialised (the next window then starts from scratch), so a crash part-way leaves no
-- half-written window that counts. The other tables' partitions are replaced by their
-- own statements (INSERT OVERWRITE of the as_of partition, which empties it even when
-- the window has no rows).
-- timestamps: as_of
INSERT OVERWRITE TABLE bandit_posterior_runs PARTITION (as_of = :as_of)
SELECT CAST(NULL AS TIMESTAMP), CAST(NULL AS STRING), CAST(NULL AS STRING),
       CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE), CAST(NULL AS DOUBLE),
       CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT),
       CAST(NULL AS DOUBLE), CAST(NULL AS TIMESTAMP)
WHERE false;
