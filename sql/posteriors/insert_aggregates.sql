-- Replace one window's rows of bandit_reward_aggregates (run after deleting them).
-- timestamps: as_of
INSERT INTO bandit_reward_aggregates (
    as_of, namespace, surface, item_id, impressions, clicks, add_to_carts, purchases,
    reward_evidence, non_reward_evidence, late_corrections
)
SELECT :as_of, namespace, surface, item_id, impressions, clicks, add_to_carts, purchases,
       reward_evidence, non_reward_evidence, late_corrections
FROM ({{ include posteriors/window_evidence }}) AS evidence;
