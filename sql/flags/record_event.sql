-- Record a flag set (value) or unset (value NULL) through the product.
-- timestamps: at
INSERT INTO bandit_flag_events (namespace, name, value, actor, at)
VALUES (:namespace, :name, :value, :actor, :at);
