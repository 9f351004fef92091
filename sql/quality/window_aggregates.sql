-- One window's reward aggregates, with the evidence the window moved and its bound
-- (each new or corrected impression moves at most one unit of evidence).
-- timestamps: as_of
SELECT item_id, impressions, clicks, add_to_carts, purchases, reward_evidence,
       non_reward_evidence, late_corrections,
       reward_evidence + non_reward_evidence AS evidence,
       impressions + late_corrections + 1e-9 AS evidence_bound
FROM bandit_reward_aggregates
WHERE as_of = :as_of;
