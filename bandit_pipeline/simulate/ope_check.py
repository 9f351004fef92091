"""Off-policy evaluation checked against the simulator's truth (docs/data-science.md).

A seeded dry run logs Thompson sampling's decisions; ``bandit-pipeline evaluate``'s
machinery then estimates candidate policies from those logs, and the simulator, which
knows every item's true expected reward, says what each candidate would truly have
earned on the same decisions. The logged decisions are split into blocks (by decision
id), each an independent replication of the estimate: the share of blocks whose 95%
interval holds the truth is the coverage, over all blocks and over those whose effective
sample size says the estimate can be trusted. The reward is the click alone, so every
outcome of the evaluated range has reached the warehouse when the run ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from bandit_pipeline.demo import demo_settings
from bandit_pipeline.evaluation.evaluate import evaluate
from bandit_pipeline.policy.candidates import parse_policy
from bandit_pipeline.settings import Settings, default_settings
from bandit_pipeline.simulate.dry_run import dry_run_settings, run_dry_run
from bandit_pipeline.simulate.shop import ShopOptions
from bandit_pipeline.simulate.truth import DryRunTruth
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.migrate import upgrade

ESTIMATORS = ("ips", "snips", "dr")
# Candidates near the served policy (another prior, a 1-day half-life, greedy) and far
# from it (uniform random, a 6-hour half-life), where overlap with the logs runs thin.
POLICIES = (
    "uniform",
    "thompson:prior_beta=30",
    "thompson:half_life_days=1",
    "thompson:half_life_days=0.25",
    "greedy",
)
# Below this effective sample size an estimate is not to be trusted (docs/data-science.md).
TRUSTED_ESS = 100
# Outcomes arrive up to 3 hours late in the shop: decisions later than this before the
# run's end are left out, so no reward is cut short.
SETTLING = timedelta(hours=3)


@dataclass(frozen=True)
class BlockResult:
    """One candidate's estimates on one block of the logged decisions, and its truth."""

    seed: int
    policy: str
    block: int
    impressions: int
    effective_sample_size: float
    truth: float
    estimates: dict[str, tuple[float, float, float]]  # estimator -> value, low, high

    def covered(self, estimator: str) -> bool:
        _, low, high = self.estimates[estimator]
        return low <= self.truth <= high

    def error(self, estimator: str) -> float:
        return abs(self.estimates[estimator][0] - self.truth)


@dataclass
class LoggedRun:
    """A dry run made for the check: its warehouse, settings and truth, and the range
    whose rewards have all arrived."""

    engine: Engine
    settings: Settings
    truth: DryRunTruth
    since: datetime
    until: datetime


def logged_run(folder: Path, start: datetime, options: ShopOptions) -> LoggedRun:
    """The dry run of ``options`` in ``folder``, rewarded by the click alone (the caller
    disposes of the engine)."""
    settings = demo_settings(default_settings(), folder).model_copy(
        update={"reward_weight_add_to_cart": 0.0, "reward_weight_purchase": 0.0}
    )
    settings = dry_run_settings(settings, options, start)
    engine = make_engine(settings.warehouse_url)
    upgrade(engine)
    result = run_dry_run(engine, settings, options, start, folder, checks_every=10_000)
    end = start + result.windows * WINDOW
    return LoggedRun(engine, settings, result.truth, start, end - SETTLING)


def evaluate_blocks(
    run: LoggedRun, policies: tuple[str, ...] = POLICIES, blocks: int = 8, seed: int = 0
) -> list[BlockResult]:
    """Evaluate ``policies`` on the run's logs and split the result into blocks."""
    evaluation = evaluate(
        run.engine,
        run.settings,
        run.since,
        run.until,
        [parse_policy(p) for p in policies],
        seed=seed,
        truth=run.truth.reward_function(),
    )
    logged = evaluation.logged
    decision = np.array([logged.contexts[c].decision_id for c in logged.context])
    rng = np.random.default_rng(seed)
    results = []
    for terms in evaluation.policies:
        for block in range(blocks):
            mask = decision % blocks == block
            estimates = terms.estimates(logged, rng, mask)
            results.append(
                BlockResult(
                    seed=seed,
                    policy=terms.policy.spec,
                    block=block,
                    impressions=int(mask.sum()),
                    effective_sample_size=estimates.effective_sample_size,
                    truth=terms.true_value(mask) or 0.0,
                    estimates={
                        name: (e.value, e.low, e.high)
                        for name, e in zip(
                            ESTIMATORS, (estimates.ips, estimates.snips, estimates.dr), strict=True
                        )
                    },
                )
            )
    return results


def check_against_truth(
    folder: Path,
    start: datetime,
    options: ShopOptions,
    *,
    policies: tuple[str, ...] = POLICIES,
    blocks: int = 8,
) -> list[BlockResult]:
    """Run the dry run of ``options`` in ``folder`` and evaluate ``policies`` on blocks of
    its logged decisions."""
    run = logged_run(folder, start, options)
    try:
        return evaluate_blocks(run, policies, blocks, options.seed)
    finally:
        run.engine.dispose()


def coverage(results: list[BlockResult], estimator: str) -> float:
    """The share of blocks whose interval holds the truth (nan without blocks)."""
    if not results:
        return float("nan")
    return sum(r.covered(estimator) for r in results) / len(results)


def trusted(results: list[BlockResult]) -> list[BlockResult]:
    """The blocks whose estimates docs/data-science.md says to trust (enough overlap)."""
    return [r for r in results if r.effective_sample_size >= TRUSTED_ESS]


def mean_error(results: list[BlockResult], estimator: str) -> float:
    """The mean absolute error of an estimator over the blocks (nan without blocks)."""
    if not results:
        return float("nan")
    return float(np.mean([r.error(estimator) for r in results]))
