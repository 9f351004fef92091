-- The newest run of the metric rollups: the time the monitors evaluate at.
SELECT MAX(as_of) FROM bandit_metric_deltas;
