-- Record a flag unset through the product (Spark, which cannot bind a NULL parameter).
-- timestamps: at
INSERT INTO bandit_flag_events VALUES (:namespace, :name, CAST(NULL AS STRING), :actor, :at);
