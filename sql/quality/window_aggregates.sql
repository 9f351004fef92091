-- One window's reward aggregates.
SELECT item_id, impressions, clicks, add_to_carts, purchases, reward_evidence,
       non_reward_evidence, late_corrections
FROM bandit_reward_aggregates
WHERE as_of = :as_of;
