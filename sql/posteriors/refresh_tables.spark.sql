-- At the start of a window: forget the file listings this session has cached, so that
-- events appended by other processes (an ingest, another job) since are read.
REFRESH TABLE bandit_rewards;
REFRESH TABLE bandit_reward_aggregates;
REFRESH TABLE bandit_posteriors;
REFRESH TABLE bandit_posterior_runs;
