-- The items explored for a user since :since (the decision's time less one hour).
SELECT item_id FROM exposures
WHERE namespace = :namespace AND user_id = :user_id AND exposed_at >= :since;
