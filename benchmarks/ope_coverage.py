"""Coverage of the off-policy estimates against the simulator's truth, at full size.

For each seed: a dry run (``--days`` simulated days, ``--fresh-items`` fresh items,
``--requests-per-hour``), its decisions' propensities recorded, then
``bandit-pipeline evaluate``'s machinery on four candidate policies (uniform random,
another prior, another half-life, greedy), over ``--blocks`` blocks of the logged
decisions, each block a replication. Prints, per candidate and estimator, how often the
95% interval held the candidate's true value and the mean absolute error, then the
totals. The reward is the click (see ``bandit_pipeline.simulate.ope_check``).

Run it::

    .venv/bin/python benchmarks/ope_coverage.py [--seeds 5] [--days 1] [--blocks 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bandit_pipeline.simulate.ope_check import (
    ESTIMATORS,
    POLICIES,
    BlockResult,
    check_against_truth,
    coverage,
    mean_error,
)
from bandit_pipeline.simulate.shop import ShopOptions

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="Dry runs (seeds 1..N).")
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--fresh-items", type=int, default=20)
    parser.add_argument("--requests-per-hour", type=int, default=900)
    parser.add_argument("--blocks", type=int, default=10)
    args = parser.parse_args()
    results: list[BlockResult] = []
    for seed in range(1, args.seeds + 1):
        began = time.perf_counter()
        options = ShopOptions(
            seed=seed,
            days=args.days,
            fresh_items=args.fresh_items,
            requests_per_hour=args.requests_per_hour,
        )
        with tempfile.TemporaryDirectory(prefix="ope-coverage-") as folder:
            run = check_against_truth(Path(folder), START, options, blocks=args.blocks)
        results += run
        impressions = sum(r.impressions for r in run) // len(POLICIES)
        print(
            f"seed {seed}: {impressions} exploration impressions evaluated, "
            f"{time.perf_counter() - began:.0f} s",
            file=sys.stderr,
        )
    print(
        f"{args.seeds} dry runs of {args.days:g} days, {args.fresh_items} fresh items, "
        f"{args.requests_per_hour} requests/hour; {args.blocks} blocks each"
    )
    header = "".join(f"{e + ' cover':>12}{e + ' error':>12}" for e in ESTIMATORS)
    print(f"{'policy':<30}{'truth':>8}{header}")
    for policy in POLICIES:
        mine = [r for r in results if r.policy == policy]
        truth = sum(r.truth for r in mine) / len(mine)
        cells = "".join(
            f"{coverage(mine, e):>12.1%}{mean_error(mine, e):>12.5f}" for e in ESTIMATORS
        )
        print(f"{policy:<30}{truth:>8.4f}{cells}")
    cells = "".join(
        f"{coverage(results, e):>12.1%}{mean_error(results, e):>12.5f}" for e in ESTIMATORS
    )
    print(f"{f'all ({len(results)} intervals)':<30}{'':>8}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
