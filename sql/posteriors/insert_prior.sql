-- Record the prior in effect for one (namespace, surface) as of a window's end, and how
-- it was fitted (BANDIT_PRIOR_MODE=empirical).
-- timestamps: as_of
INSERT INTO bandit_priors (
    as_of, namespace, surface, alpha, beta, method, items, observed_mean,
    observed_variance, noise_variance, max_strength, min_items, min_evidence
)
VALUES (
    :as_of, :namespace, :surface, :alpha, :beta, :method, :items, :observed_mean,
    :observed_variance, :noise_variance, :max_strength, :min_items, :min_evidence
);
