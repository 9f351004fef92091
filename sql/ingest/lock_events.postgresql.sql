-- Taken by every batch of every ingest before it writes bandit_rewards, held until the
-- batch commits. Racing ingests of one file thus write one batch at a time: the fast
-- path's COPY (copy_events.postgresql.sql) never waits on another ingest's uncommitted
-- rows, and the merge's anti-join (merge_events.postgresql.sql) always sees them
-- committed, so each event lands once.
SELECT pg_advisory_xact_lock(hashtext('bandit_rewards merge'));
