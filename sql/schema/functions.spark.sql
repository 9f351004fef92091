-- The warehouse functions the shared window statements call, as Spark SQL functions of the
-- session (PostgreSQL has them as schema functions: migrations 0002, 0008 and 0012).
--
-- Seconds since the epoch of a timestamp as a double: the exact number of microseconds
-- divided by a million, correctly rounded, as PostgreSQL's date_part('epoch') and
-- Python's datetime.timestamp() compute it.
CREATE OR REPLACE TEMPORARY FUNCTION bandit_epoch(ts TIMESTAMP)
    RETURNS DOUBLE
    RETURN unix_micros(ts) / 1e6;

-- The decay of evidence with age: 0.5 ** (elapsed / half-life), and 1 for evidence dated at
-- or after the moment it is decayed to (policy.decay_factor).
CREATE OR REPLACE TEMPORARY FUNCTION bandit_decay(elapsed_seconds DOUBLE, half_life_seconds DOUBLE)
    RETURNS DOUBLE
    RETURN CASE WHEN elapsed_seconds <= 0 THEN 1.0D
                ELSE power(0.5D, elapsed_seconds / half_life_seconds) END;
