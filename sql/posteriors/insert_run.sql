-- Record that a partition was materialised, how, and with which settings.
-- timestamps: as_of, window_start
INSERT INTO bandit_posterior_runs (
    as_of, window_start, mode, parameters_fingerprint, prior_alpha, prior_beta,
    half_life_days, items_touched, posterior_rows, impressions, reward_evidence
)
VALUES (
    :as_of, :window_start, :mode, :parameters_fingerprint, :prior_alpha, :prior_beta,
    :half_life_days, :items_touched, :posterior_rows, :impressions, :reward_evidence
);
