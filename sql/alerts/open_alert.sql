-- Open an alert episode (a unique index allows one open episode per kind and surface).
-- timestamps: as_of
INSERT INTO bandit_alerts (
    kind, namespace, surface, opened_at, explore_impressions, explore_ctr, baseline_ctr, details
)
VALUES (
    :kind, :namespace, :surface, :as_of, :explore_impressions, :explore_ctr, :baseline_ctr,
    :details
);
