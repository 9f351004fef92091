-- Keep an event row that failed validation beside its reason; the same raw row lands once.
INSERT INTO bandit_rewards_rejected (raw_hash, raw, reason, source, line_number)
VALUES (:raw_hash, :raw, :reason, :source, :line_number)
ON CONFLICT (raw_hash) DO NOTHING;
