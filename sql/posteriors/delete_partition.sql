-- Clear one partition before it is (re)computed, so that reruns replace and never append.
-- timestamps: as_of
DELETE FROM bandit_reward_aggregates WHERE as_of = :as_of;
DELETE FROM bandit_posteriors WHERE as_of = :as_of;
DELETE FROM bandit_posterior_runs WHERE as_of = :as_of;
DELETE FROM bandit_priors WHERE as_of = :as_of;
