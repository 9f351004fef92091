"""Coverage of the off-policy estimates against the simulator's truth, at full size.

For each seed: a dry run (``--days`` simulated days, ``--fresh-items`` fresh items,
``--requests-per-hour``), its decisions' propensities recorded, then
``bandit-pipeline evaluate``'s machinery on four candidate policies (uniform random,
another prior, another half-life, greedy), over ``--blocks`` blocks of the logged
decisions, each block a replication. Prints, per candidate and estimator, how often the
95% interval held the candidate's true value and the mean absolute error, over all
blocks and over the blocks whose effective sample size is large enough to trust (the
median ESS of a block is printed too), then the totals. The reward is the click (see
``bandit_pipeline.simulate.ope_check``).

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
    TRUSTED_ESS,
    BlockResult,
    check_against_truth,
    coverage,
    mean_error,
    trusted,
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
    for label, chosen in (
        ("all blocks", lambda rows: rows),
        (f"blocks with ESS >= {TRUSTED_ESS}", trusted),
    ):
        print(f"\n{label}: coverage of the 95% intervals, mean absolute error")
        header = "".join(f"{e + ' cover':>12}{e + ' error':>12}" for e in ESTIMATORS)
        print(f"{'policy':<30}{'blocks':>7}{'ESS':>7}{'truth':>8}{header}")
        for policy in POLICIES:
            mine = chosen([r for r in results if r.policy == policy])
            if not mine:
                print(f"{policy:<30}{0:>7}")
                continue
            ess = sorted(r.effective_sample_size for r in mine)[len(mine) // 2]
            truth = sum(r.truth for r in mine) / len(mine)
            cells = "".join(
                f"{coverage(mine, e):>12.1%}{mean_error(mine, e):>12.5f}" for e in ESTIMATORS
            )
            print(f"{policy:<30}{len(mine):>7}{ess:>7.0f}{truth:>8.4f}{cells}")
        rows = chosen(results)
        cells = "".join(
            f"{coverage(rows, e):>12.1%}{mean_error(rows, e):>12.5f}" for e in ESTIMATORS
        )
        print(f"{'all':<30}{len(rows):>7}{'':>7}{'':>8}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
