-- The rows a batch writes into bandit_rewards: its new events (staged by
-- ingest/stage_new_events.spark.sql) under the batch's id, with the partition of their
-- ingestion hour. warehouse/spark_ingest.py writes them as files of their own and moves
-- them into the table's folders; they are not read until the batch is committed
-- (schema/committed_views.spark.sql).
SELECT event_id, event_type, occurred_at, ingested_at, namespace, surface, user_id,
       request_id, item_id, slot, explore, bandit_policy_id, experiment, variant,
       :batch_id AS batch_id, date_trunc('HOUR', ingested_at) AS ingested_hour
FROM bandit_new_events
