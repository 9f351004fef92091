-- Record a flag set (Spark: appended; an unset is recorded by flags/record_unset).
-- timestamps: at
INSERT INTO bandit_flag_events VALUES (:namespace, :name, :value, :actor, :at);
