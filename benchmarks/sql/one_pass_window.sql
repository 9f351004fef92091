-- The floor the window job is measured against (benchmarks/posterior_update.py): one
-- pass over the rows that became visible in [window_start, as_of), grouped by impression
-- key and then by item with the decay. No history, no late corrections, nothing stored:
-- the least any exact computation of the window's evidence must do.
-- timestamps: as_of, window_start
WITH impressions AS (
    SELECT namespace, surface, item_id,
           MIN(CASE WHEN event_type = 'impression' AND (explore OR :train_all)
                     AND COALESCE(variant, '') <> 'control'
                    THEN bandit_epoch(occurred_at) END) AS t,
           COALESCE(MAX(CASE event_type
                            WHEN 'click' THEN :w_click
                            WHEN 'add_to_cart' THEN :w_add_to_cart
                            WHEN 'purchase' THEN :w_purchase
                        END), 0) / :w_max AS r
    FROM bandit_rewards
    WHERE ingested_at >= :window_start AND ingested_at < :as_of
    GROUP BY namespace, surface, request_id, item_id
)
SELECT namespace, surface, item_id,
       COUNT(*) AS impressions,
       SUM(bandit_decay(:as_of_epoch - t, :half_life_seconds) * r) AS reward_evidence,
       SUM(bandit_decay(:as_of_epoch - t, :half_life_seconds) * (1.0 - r)) AS non_reward_evidence
FROM impressions
WHERE t IS NOT NULL
GROUP BY namespace, surface, item_id
