-- Whether the warehouse already holds events or a catalog (the demo refuses such a one).
SELECT EXISTS (SELECT 1 FROM bandit_rewards) OR EXISTS (SELECT 1 FROM item_catalog);
