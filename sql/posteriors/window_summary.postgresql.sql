-- Figures of one window for the run record and the Dagster metadata: PostgreSQL's
-- variant of posteriors/window_summary.sql. The window's aggregate rows come in no fixed
-- order (posteriors/stage_window_keys.postgresql.sql), so the evidence is summed as
-- numeric (each value to 15 significant digits, their sum exact in any order) and turned
-- back into a double: a rerun records the same number to the last bit. The tests check
-- that this file is the shared one but for that sum.
-- timestamps: as_of
SELECT COUNT(*) AS items_touched,
       COALESCE(SUM(impressions), 0) AS impressions,
       COALESCE(SUM(clicks), 0) AS clicks,
       COALESCE(SUM(add_to_carts), 0) AS add_to_carts,
       COALESCE(SUM(purchases), 0) AS purchases,
       COALESCE(SUM(reward_evidence::numeric)::float8, 0.0) AS reward_evidence,
       COALESCE(SUM(late_corrections), 0) AS late_corrections
FROM bandit_reward_aggregates
WHERE as_of = :as_of;
