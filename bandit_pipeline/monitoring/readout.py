"""The treatment-versus-control readout (view ``bandit_experiment_readout``) with the
sample-ratio-mismatch p-value over the experiment's users, which SQL cannot compute
portably."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from bandit_pipeline.report.stats import srm_p_value
from bandit_pipeline.warehouse.sql import sql_statement

ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))

SRM_ALPHA = 0.001


@dataclass(frozen=True)
class ReadoutRow:
    namespace: str
    surface: str
    experiment: str
    metric: str
    control_impressions: int
    treatment_impressions: int
    control_rate: float
    treatment_rate: float
    relative_difference: float | None
    relative_difference_ci_low: float | None
    relative_difference_ci_high: float | None
    holdout_percent: float | None
    control_users: int
    treatment_users: int

    @property
    def srm_p_value(self) -> float | None:
        """The chi-square test of the control share of the users (the unit the experiment
        assigns) against the holdout; None without a holdout."""
        if self.holdout_percent is None:
            return None
        return srm_p_value(self.control_users, self.treatment_users, self.holdout_percent)

    @property
    def srm_suspected(self) -> bool:
        return self.srm_p_value is not None and self.srm_p_value < SRM_ALPHA


def experiment_readout(engine: Engine) -> list[ReadoutRow]:
    with engine.connect() as connection:
        rows = connection.execute(sql_statement("metrics/readout")).all()
        users = assignment_users(connection, None, ALL_TIME[0], ALL_TIME[1])
    readout = []
    for row in rows:
        control, treatment = users.get((row.namespace, row.surface, row.experiment), (0, 0))
        readout.append(
            ReadoutRow(
                *row[:4],
                int(row[4]),
                int(row[5]),
                *(None if v is None else float(v) for v in row[6:12]),
                control,
                treatment,
            )
        )
    return readout


def assignment_users(
    connection: Connection, namespace: str | None, since: datetime, until: datetime
) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(control users, treatment users) per (namespace, surface, experiment) among the
    impressions that occurred in ``[since, until)``."""
    counts: dict[tuple[str, str, str], list[int]] = {}
    for row in connection.execute(
        sql_statement("metrics/assignment_users"),
        {"namespace": namespace, "since": since, "until": until},
    ):
        pair = counts.setdefault((row.namespace, row.surface, row.experiment), [0, 0])
        pair[row.variant == "treatment"] = int(row.users)
    return {key: (c, t) for key, (c, t) in counts.items()}
