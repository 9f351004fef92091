-- At the start of a window: forget the file listings this session has cached, so that
-- events appended and batches committed by other processes (an ingest, another job) since
-- are read.
REFRESH TABLE IDENTIFIER(:database || '.bandit_rewards');
REFRESH TABLE IDENTIFIER(:database || '.bandit_rewards_rejected');
REFRESH TABLE IDENTIFIER(:database || '.bandit_ingest_batches');
REFRESH TABLE IDENTIFIER(:database || '.item_catalog');
REFRESH TABLE IDENTIFIER(:database || '.item_catalog_rejected');
REFRESH TABLE bandit_reward_aggregates;
REFRESH TABLE bandit_posteriors;
REFRESH TABLE bandit_posterior_runs;
REFRESH TABLE bandit_metric_deltas;
REFRESH TABLE bandit_candidate_pool;
REFRESH TABLE bandit_publications;
REFRESH TABLE bandit_killswitch_events;
REFRESH TABLE bandit_alert_events;
REFRESH TABLE bandit_flag_events;
