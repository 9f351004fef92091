-- The propensity of one exploration slot of a decision (a concurrent run's row is kept).
-- timestamps: computed_at
INSERT INTO bandit_decision_propensities (
    decision_id, rank, slot, item_id, propensity, error_bound, eligible, status, computed_at
)
VALUES (
    :decision_id, :rank, :slot, :item_id, :propensity, :error_bound, :eligible, :status,
    :computed_at
)
ON CONFLICT (decision_id, rank) DO NOTHING;
