-- Metric rollups, alerts and the kill switch (SQLite). Same tables as PostgreSQL;
-- bandit_timestamp(), ln(), exp(), sqrt() and floor() are registered by the pipeline.

CREATE TABLE bandit_metric_deltas (
    as_of         TEXT    NOT NULL,
    window_start  TEXT    NOT NULL,
    namespace     TEXT    NOT NULL,
    surface       TEXT    NOT NULL,
    experiment    TEXT    NOT NULL DEFAULT '',
    variant       TEXT    NOT NULL DEFAULT '',
    explore       INTEGER NOT NULL CHECK (explore IN (0, 1)),
    impressions   INTEGER NOT NULL,
    clicked       INTEGER NOT NULL,
    carted        INTEGER NOT NULL,
    purchased     INTEGER NOT NULL,
    reward_sum    REAL    NOT NULL,
    reward_sq_sum REAL    NOT NULL,
    PRIMARY KEY (as_of, window_start, namespace, surface, experiment, variant, explore)
);
CREATE INDEX bandit_metric_deltas_window_idx ON bandit_metric_deltas (window_start);

CREATE TABLE bandit_experiments (
    experiment      TEXT NOT NULL PRIMARY KEY,
    holdout_percent REAL NOT NULL,
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);

CREATE TABLE bandit_alerts (
    alert_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                TEXT    NOT NULL,
    namespace           TEXT    NOT NULL,
    surface             TEXT    NOT NULL,
    opened_at           TEXT    NOT NULL,
    resolved_at         TEXT,
    explore_impressions INTEGER NOT NULL,
    explore_ctr         REAL,
    baseline_ctr        REAL,
    details             TEXT    NOT NULL,
    notified_at         TEXT
);
CREATE UNIQUE INDEX bandit_alerts_one_open_idx
    ON bandit_alerts (kind, namespace, surface) WHERE resolved_at IS NULL;

CREATE TABLE bandit_killswitch_events (
    event_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    surface   TEXT NOT NULL,
    action    TEXT NOT NULL CHECK (action IN ('trip', 'reset')),
    reason    TEXT NOT NULL,
    figures   TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);

-- Per 15-minute window (the window its impressions were first ingested in), namespace,
-- surface, experiment and variant: exploration slots, the other (baseline) slots, and
-- the core metrics of all slots together. Late outcomes update the window of their
-- impression at the next run. CTR counts impressions with a click within the
-- attribution window; rewards use the configured weights (DESIGN.md section 3).
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

-- Hourly rollup of bandit_explore_metrics (same columns, hourly buckets).
CREATE VIEW bandit_explore_metrics_hourly AS
SELECT
    substr(window_start, 1, 13) || ':00:00.000000' AS period_start,
    namespace, surface, experiment, variant,
    SUM(bandit_explore_impressions) AS bandit_explore_impressions,
    SUM(bandit_explore_reward_sum) AS bandit_explore_reward_sum,
    CASE WHEN SUM(bandit_explore_impressions) > 0
         THEN SUM(bandit_explore_ctr * bandit_explore_impressions) / SUM(bandit_explore_impressions)
    END AS bandit_explore_ctr,
    SUM(baseline_impressions) AS baseline_impressions,
    SUM(baseline_reward_sum) AS baseline_reward_sum,
    CASE WHEN SUM(baseline_impressions) > 0
         THEN SUM(baseline_ctr * baseline_impressions) / SUM(baseline_impressions) END AS baseline_ctr,
    SUM(impressions) AS impressions,
    SUM(clicks) AS clicks,
    SUM(add_to_carts) AS add_to_carts,
    SUM(purchases) AS purchases,
    SUM(reward_sum) AS reward_sum,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(clicks) / SUM(impressions) END AS ctr,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(add_to_carts) / SUM(impressions) END
        AS add_to_cart_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(purchases) / SUM(impressions) END
        AS purchase_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(reward_sum) / SUM(impressions) END
        AS reward_per_impression
FROM bandit_explore_metrics
GROUP BY substr(window_start, 1, 13) || ':00:00.000000', namespace, surface, experiment, variant;

-- Daily rollup of bandit_explore_metrics (same columns, daily buckets).
CREATE VIEW bandit_explore_metrics_daily AS
SELECT
    substr(window_start, 1, 10) || ' 00:00:00.000000' AS period_start,
    namespace, surface, experiment, variant,
    SUM(bandit_explore_impressions) AS bandit_explore_impressions,
    SUM(bandit_explore_reward_sum) AS bandit_explore_reward_sum,
    CASE WHEN SUM(bandit_explore_impressions) > 0
         THEN SUM(bandit_explore_ctr * bandit_explore_impressions) / SUM(bandit_explore_impressions)
    END AS bandit_explore_ctr,
    SUM(baseline_impressions) AS baseline_impressions,
    SUM(baseline_reward_sum) AS baseline_reward_sum,
    CASE WHEN SUM(baseline_impressions) > 0
         THEN SUM(baseline_ctr * baseline_impressions) / SUM(baseline_impressions) END AS baseline_ctr,
    SUM(impressions) AS impressions,
    SUM(clicks) AS clicks,
    SUM(add_to_carts) AS add_to_carts,
    SUM(purchases) AS purchases,
    SUM(reward_sum) AS reward_sum,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(clicks) / SUM(impressions) END AS ctr,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(add_to_carts) / SUM(impressions) END
        AS add_to_cart_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(purchases) / SUM(impressions) END
        AS purchase_rate,
    CASE WHEN SUM(impressions) > 0 THEN 1.0 * SUM(reward_sum) / SUM(impressions) END
        AS reward_per_impression
FROM bandit_explore_metrics
GROUP BY substr(window_start, 1, 10) || ' 00:00:00.000000', namespace, surface, experiment, variant;

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
