-- How many posterior rows a window wrote (Spark's INSERT reports no row count).
-- timestamps: as_of
SELECT COUNT(*) FROM bandit_posteriors WHERE as_of = :as_of;
