-- Record an experiment's configured holdout (for the sample-ratio-mismatch check).
-- timestamps: as_of
INSERT INTO bandit_experiments (experiment, holdout_percent, updated_at)
VALUES (:experiment, :holdout_percent, :as_of)
ON CONFLICT (experiment) DO UPDATE SET
    holdout_percent = excluded.holdout_percent,
    updated_at = excluded.updated_at;
