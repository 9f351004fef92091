"""The treatment-versus-control readout (view ``bandit_experiment_readout``) with the
sample-ratio-mismatch p-value, which SQL cannot compute portably."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Engine

from bandit_pipeline.warehouse.sql import sql_statement

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
    srm_chi_square: float | None

    @property
    def srm_p_value(self) -> float | None:
        """Chi-square with one degree of freedom: P(X > x) = erfc(sqrt(x / 2))."""
        if self.srm_chi_square is None:
            return None
        return math.erfc(math.sqrt(self.srm_chi_square / 2.0))

    @property
    def srm_suspected(self) -> bool:
        return self.srm_p_value is not None and self.srm_p_value < SRM_ALPHA


def experiment_readout(engine: Engine) -> list[ReadoutRow]:
    with engine.connect() as connection:
        rows = connection.execute(sql_statement("metrics/readout")).all()
    return [
        ReadoutRow(
            *row[:4],
            int(row[4]),
            int(row[5]),
            *(None if v is None else float(v) for v in row[6:]),
        )
        for row in rows
    ]
