-- Copy one candidate of a published snapshot (a concurrent copy of the same one is kept).
INSERT INTO bandit_decision_snapshots (namespace, surface, version, position, item_id, alpha, beta)
VALUES (:namespace, :surface, :version, :position, :item_id, :alpha, :beta)
ON CONFLICT (namespace, surface, version, position) DO NOTHING;
