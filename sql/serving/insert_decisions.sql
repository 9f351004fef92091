-- Append a batch of decision traces.
-- timestamps: decided_at
INSERT INTO bandit_decisions (
    decided_at, namespace, surface, user_id, request_id, explored, reason, policy_id,
    experiment, variant, snapshot_version, seed, explore_slots, chosen, scores, eligible,
    skipped_recent, skipped_shown, detail
)
VALUES (
    :decided_at, :namespace, :surface, :user_id, :request_id, :explored, :reason, :policy_id,
    :experiment, :variant, :snapshot_version, :seed, :explore_slots, :chosen, :scores,
    :eligible, :skipped_recent, :skipped_shown, :detail
);
