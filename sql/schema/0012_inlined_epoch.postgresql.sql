-- bandit_epoch() becomes one the planner inlines (Alembic revision 0012). As first written
-- (0002) it was IMMUTABLE around EXTRACT on a timestamptz, which PostgreSQL counts as
-- STABLE: a function is only inlined when its body is no more volatile than it says, so
-- every call was a real function call, and numeric arithmetic besides. The window
-- statements call it several times per row: on a million rows that cost seconds
-- (docs/performance.md). date_part returns the same double precision value (the exact
-- number of microseconds divided by a million, correctly rounded either way) without
-- the numeric detour; STABLE lets the planner inline it.
CREATE OR REPLACE FUNCTION bandit_epoch(ts timestamptz) RETURNS double precision
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN date_part('epoch', ts);
