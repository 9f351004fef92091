-- Clear one run's contribution before it is (re)computed.
-- timestamps: as_of
DELETE FROM bandit_metric_deltas WHERE as_of = :as_of;
