-- Every user's exposures older than the guard's hour (reads never ask for them).
DELETE FROM exposures WHERE exposed_at < :cutoff;
