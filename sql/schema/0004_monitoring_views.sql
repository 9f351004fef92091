-- Metric views shared by PostgreSQL and SQLite. Applied by Alembic revision 0004
-- after 0004_monitoring.<dialect>.sql.

-- Per 15-minute window (the window its impressions were first ingested in), namespace,
-- surface, experiment and variant: exploration slots, the other (baseline) slots, and
-- the core metrics of all slots together. Late outcomes update the window of their
-- impression at the next run. CTR counts impressions with a click within the
-- attribution window; rewards use the configured weights (docs/posterior.md).
CREATE VIEW bandit_explore_metrics AS
SELECT
    window_start,
    namespace,
    surface,
    NULLIF(experiment, '') AS experiment,
    NULLIF(variant, '') AS variant,
    SUM(CASE WHEN explore = 1 THEN impressions ELSE 0 END) AS bandit_explore_impressions,
    SUM(CASE WHEN explore = 1 THEN reward_sum ELSE 0 END) AS bandit_explore_reward_sum,
    CASE WHEN SUM(CASE WHEN explore = 1 THEN impressions ELSE 0 END) > 0
         THEN 1.0 * SUM(CASE WHEN explore = 1 THEN clicked ELSE 0 END)
              / SUM(CASE WHEN explore = 1 THEN impressions ELSE 0 END) END AS bandit_explore_ctr,
    SUM(CASE WHEN explore = 0 THEN impressions ELSE 0 END) AS baseline_impressions,
    SUM(CASE WHEN explore = 0 THEN reward_sum ELSE 0 END) AS baseline_reward_sum,
    CASE WHEN SUM(CASE WHEN explore = 0 THEN impressions ELSE 0 END) > 0
         THEN 1.0 * SUM(CASE WHEN explore = 0 THEN clicked ELSE 0 END)
              / SUM(CASE WHEN explore = 0 THEN impressions ELSE 0 END) END AS baseline_ctr,
    SUM(impressions) AS impressions,
    SUM(clicked) AS clicks,
    SUM(carted) AS add_to_carts,
    SUM(purchased) AS purchases,
    SUM(reward_sum) AS reward_sum,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(clicked) / SUM(impressions) END AS ctr,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(carted) / SUM(impressions) END
        AS add_to_cart_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(purchased) / SUM(impressions) END
        AS purchase_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(reward_sum) / SUM(impressions) END
        AS reward_per_impression
FROM bandit_metric_deltas
GROUP BY window_start, namespace, surface, experiment, variant;

-- Treatment against control per namespace, surface and experiment, over all windows:
-- each core metric for both variants, the relative difference treatment / control - 1
-- with a 95% confidence interval (delta method on the log of the ratio), and the
-- sample-ratio-mismatch statistic: chi-square (1 degree of freedom) of the observed
-- control share of impressions against the holdout recorded in bandit_experiments
-- (srm_suspected when above 10.83, i.e. p < 0.001). The statistic's p-value is in
-- `bandit-pipeline experiment readout`.
CREATE VIEW bandit_experiment_readout AS
WITH totals AS (
    SELECT namespace, surface, experiment,
           SUM(CASE WHEN variant = 'control' THEN impressions ELSE 0 END) AS n_c,
           SUM(CASE WHEN variant = 'treatment' THEN impressions ELSE 0 END) AS n_t,
           SUM(CASE WHEN variant = 'control' THEN clicked ELSE 0 END) AS clicks_c,
           SUM(CASE WHEN variant = 'treatment' THEN clicked ELSE 0 END) AS clicks_t,
           SUM(CASE WHEN variant = 'control' THEN carted ELSE 0 END) AS carts_c,
           SUM(CASE WHEN variant = 'treatment' THEN carted ELSE 0 END) AS carts_t,
           SUM(CASE WHEN variant = 'control' THEN purchased ELSE 0 END) AS purchases_c,
           SUM(CASE WHEN variant = 'treatment' THEN purchased ELSE 0 END) AS purchases_t
    FROM bandit_metric_deltas
    WHERE experiment <> '' AND variant IN ('control', 'treatment')
    GROUP BY namespace, surface, experiment
),
metrics AS (
    SELECT namespace, surface, experiment, n_c, n_t, 'ctr' AS metric, clicks_c AS x_c, clicks_t AS x_t FROM totals
    UNION ALL
    SELECT namespace, surface, experiment, n_c, n_t, 'add_to_cart_rate', carts_c, carts_t FROM totals
    UNION ALL
    SELECT namespace, surface, experiment, n_c, n_t, 'purchase_rate', purchases_c, purchases_t FROM totals
),
rates AS (
    SELECT m.*, 1.0 * x_c / n_c AS control_rate, 1.0 * x_t / n_t AS treatment_rate,
           e.holdout_percent
    FROM metrics AS m
    LEFT JOIN bandit_experiments AS e ON e.experiment = m.experiment
    WHERE n_c > 0 AND n_t > 0
)
SELECT namespace, surface, experiment, metric,
       n_c AS control_impressions, n_t AS treatment_impressions,
       control_rate, treatment_rate,
       CASE WHEN x_c > 0 THEN treatment_rate / control_rate - 1 END AS relative_difference,
       CASE WHEN x_c > 0 AND x_t > 0 THEN
           exp(ln(treatment_rate / control_rate)
               - 1.959964 * sqrt((1 - treatment_rate) / x_t + (1 - control_rate) / x_c)) - 1
       END AS relative_difference_ci_low,
       CASE WHEN x_c > 0 AND x_t > 0 THEN
           exp(ln(treatment_rate / control_rate)
               + 1.959964 * sqrt((1 - treatment_rate) / x_t + (1 - control_rate) / x_c)) - 1
       END AS relative_difference_ci_high,
       holdout_percent,
       CASE WHEN holdout_percent > 0 AND holdout_percent < 100 THEN
           (n_c - (n_c + n_t) * holdout_percent / 100.0) * (n_c - (n_c + n_t) * holdout_percent / 100.0)
               / ((n_c + n_t) * holdout_percent / 100.0)
           + (n_t - (n_c + n_t) * (100 - holdout_percent) / 100.0)
               * (n_t - (n_c + n_t) * (100 - holdout_percent) / 100.0)
               / ((n_c + n_t) * (100 - holdout_percent) / 100.0)
       END AS srm_chi_square
FROM rates;
