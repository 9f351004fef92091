-- One item explored for a user, at the decision's time (a later exposure of the same
-- item replaces the earlier).
INSERT OR REPLACE INTO exposures (namespace, user_id, item_id, exposed_at)
VALUES (:namespace, :user_id, :item_id, :exposed_at);
