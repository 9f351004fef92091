"""The empirical prior in the warehouse: fitted by the job at each window's end from the
stored posteriors, recorded per (namespace, surface) in ``bandit_priors``, read back by
the candidate pool and the posterior views. The math is ``policy/prior.py``.

The fit reads only posteriors as of the window's end, so a rerun or a backfill of the
window fits the same prior (docs/posterior.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, Engine

from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.policy.prior import FittedPrior, PriorFitParameters, fit_prior
from bandit_pipeline.warehouse.engine import aware_timestamp
from bandit_pipeline.warehouse.sql import sql_statement

SurfaceKey = tuple[str, str]  # namespace, surface


def _as_of_params(as_of: datetime, params: PosteriorParameters) -> dict[str, object]:
    return {
        "as_of": as_of,
        "as_of_epoch": as_of.timestamp(),
        "prior_alpha": params.prior_alpha,
        "prior_beta": params.prior_beta,
        "half_life_seconds": params.half_life_seconds,
    }


def fit_priors(
    connection: Connection, as_of: datetime, params: PosteriorParameters, fit: PriorFitParameters
) -> dict[SurfaceKey, FittedPrior]:
    """The prior of every (namespace, surface) with a well-explored item as of ``as_of``."""
    rows = connection.execute(
        sql_statement("posteriors/prior_evidence"),
        {**_as_of_params(as_of, params), "min_evidence": fit.evidence_threshold},
    ).all()
    evidence: dict[SurfaceKey, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        evidence[row.namespace, row.surface].append((row.reward_evidence, row.non_reward_evidence))
    fitted = {}
    for key, pairs in evidence.items():
        values = np.array(pairs, dtype=float)
        fitted[key] = fit_prior(
            values[:, 0], values[:, 1], fit, params.prior_alpha, params.prior_beta
        )
    return fitted


def record_priors(
    connection: Connection,
    as_of: datetime,
    priors: dict[SurfaceKey, FittedPrior],
    fit: PriorFitParameters,
) -> None:
    """Store each surface's prior as the one in effect as of ``as_of``."""
    for (namespace, surface), prior in sorted(priors.items()):
        connection.execute(
            sql_statement("posteriors/insert_prior"),
            {
                "as_of": as_of,
                "namespace": namespace,
                "surface": surface,
                "alpha": prior.alpha,
                "beta": prior.beta,
                "method": prior.method,
                "items": prior.items,
                "observed_mean": prior.observed_mean,
                "observed_variance": prior.observed_variance,
                "noise_variance": prior.noise_variance,
                "max_strength": fit.max_strength,
                "min_items": fit.min_items,
                "min_evidence": fit.min_evidence,
            },
        )


def prior_in_effect(
    connection: Connection,
    as_of: datetime,
    namespace: str,
    surface: str,
    params: PosteriorParameters,
) -> tuple[float, float]:
    """(alpha0, beta0) that new items of the surface get as of ``as_of``: the recorded
    empirical prior, or the fixed one when the run recorded none."""
    recorded = recorded_prior(connection, as_of, namespace, surface)
    return (params.prior_alpha, params.prior_beta) if recorded is None else recorded


def recorded_prior(
    connection: Connection, as_of: datetime, namespace: str, surface: str
) -> tuple[float, float] | None:
    """The empirical prior the run of ``as_of`` recorded for the surface (None: none)."""
    row = connection.execute(
        sql_statement("posteriors/prior_in_effect"),
        {"as_of": as_of, "namespace": namespace, "surface": surface},
    ).one_or_none()
    return None if row is None else (row.alpha, row.beta)


@dataclass(frozen=True)
class PriorSuggestion:
    """What ``bandit-pipeline prior suggest`` prints: the fit as of a window's end, and
    the prior that window's run recorded (None: the fixed prior was in effect)."""

    as_of: datetime
    fitted: dict[SurfaceKey, FittedPrior]
    in_effect: dict[SurfaceKey, tuple[float, float]]


def suggest_priors(
    engine: Engine,
    params: PosteriorParameters,
    fit: PriorFitParameters,
    until: datetime,
) -> PriorSuggestion | None:
    """The empirical prior of every surface as of the newest window at or before
    ``until``, whatever the prior mode in effect (None: no window materialised yet)."""
    with engine.connect() as connection:
        newest = connection.execute(sql_statement("posteriors/newest_run"), {"until": until})
        as_of = newest.scalar()
        if as_of is None:
            return None
        as_of = aware_timestamp(as_of)
        fitted = fit_priors(connection, as_of, params, replace(fit, mode="empirical"))
        in_effect = {
            key: recorded
            for key in fitted
            if (recorded := recorded_prior(connection, as_of, *key)) is not None
        }
    return PriorSuggestion(as_of, fitted, in_effect)
