-- The evidence the empirical prior is fitted to (policy/prior.py): every item whose
-- decayed evidence as of :as_of reaches :min_evidence trained impressions, graduated
-- items included, in a fixed order so that a rerun fits the same numbers. The caller binds
-- the setting less its rounding slack (PriorFitParameters.evidence_threshold).
-- timestamps: as_of
SELECT e.namespace, e.surface, e.reward_evidence, e.non_reward_evidence
FROM ({{ include posteriors/evidence_as_of }}) AS e
WHERE e.reward_evidence + e.non_reward_evidence >= :min_evidence
ORDER BY e.namespace, e.surface, e.item_id;
