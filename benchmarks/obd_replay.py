"""Replay on real logged traffic: the Open Bandit Dataset's small sample.

The Open Bandit Dataset (Saito et al. 2020, "Open Bandit Dataset and Pipeline") logs
fashion-item recommendations of ZOZOTOWN in 3 positions, chosen among 80 items by a
uniform random policy in one part of the traffic and by Bernoulli Thompson sampling in
the other, with each row's click and propensity. Open Bandit Pipeline's source package
on PyPI (obp 0.5.7) ships a sample of 10,000 rows per policy and campaign; this reads the
ALL campaign's two samples from it (downloaded with pip, never installed, into
``.bandit/cache/obd``, which git ignores) and prints:

* the product's Thompson sampling, its Beta posteriors trained on the first half of the
  random policy's rows by the posterior definition (the product's prior and half-life),
  evaluated on the second half with the product's IPS, SNIPS and DR estimators: its click
  rate and its ratio to the random policy's observed click rate on the same rows, with
  95% intervals and the effective sample size (``bandit_pipeline.evaluation.obd``);
* the logged Bernoulli TS sample's click rate over the random sample's, next to the
  published ratio on the full dataset, 1.43;
* the machine and the wall time.

Run it::

    .venv/bin/python benchmarks/obd_replay.py [--seed 0] [--prior-beta 1] [--half-life-days 14]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from common import machine_description, positive_int, progress

from bandit_pipeline.evaluation.obd import (
    MONTE_CARLO_DRAWS,
    BanditLog,
    Replay,
    on_policy_ratio,
    read_log,
    replay,
)
from bandit_pipeline.policy.ope import Estimate, mean_interval
from bandit_pipeline.settings import default_settings

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bandit" / "cache" / "obd"
PACKAGE = "obp==0.5.7"
ARCHIVE = "obp-0.5.7.tar.gz"  # PyPI has no wheel of 0.5.7: the source package holds the data
SAMPLE = "obp/dataset/obd/{policy}/all/{name}.csv"
# Saito et al. 2020, Table 1, campaign ALL: rows, click rate and its 95% half-width.
PUBLISHED = {"random": (1_374_327, 0.0035, 0.00010), "bts": (12_168_084, 0.0050, 0.00004)}
PUBLISHED_RATIO = 1.43
POLICY_NAMES = {
    "ranked": "product TS, k-th draw at position k",
    "top": "product TS, top draw at each position",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the package is kept")
    parser.add_argument("--seed", type=int, default=0, help="Monte Carlo and bootstrap seed")
    parser.add_argument("--draws", type=positive_int, default=MONTE_CARLO_DRAWS)
    parser.add_argument("--train-share", type=float, default=0.5)
    defaults = default_settings()
    parser.add_argument("--prior-alpha", type=float, default=defaults.prior_alpha)
    parser.add_argument("--prior-beta", type=float, default=defaults.prior_beta)
    parser.add_argument("--half-life-days", type=float, default=defaults.half_life_days)
    return parser.parse_args()


def source_package(cache: Path) -> Path:
    """Open Bandit Pipeline's source package, downloaded once (without its dependencies:
    it is read, never installed; its Python bound excludes this one)."""
    path = cache / ARCHIVE
    if not path.exists():
        progress(f"downloading {PACKAGE} into {cache}")
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps"]
        command += ["--no-binary=:all:", "--ignore-requires-python", "-d", str(cache)]
        subprocess.run(command, check=True, capture_output=True)
    return path


@contextmanager
def member(archive: tarfile.TarFile, suffix: str) -> Iterator[io.TextIOWrapper]:
    """The text of the archive's one file whose path ends with ``suffix``."""
    names = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(suffix)]
    if len(names) != 1:
        raise SystemExit(f"{archive.name}: expected one file ending with {suffix}")
    with io.TextIOWrapper(archive.extractfile(names[0]), encoding="utf-8") as text:
        yield text


def read_sample(archive: tarfile.TarFile, policy: str) -> BanditLog:
    with (
        member(archive, SAMPLE.format(policy=policy, name="all")) as rows,
        member(archive, SAMPLE.format(policy=policy, name="item_context")) as items,
    ):
        return read_log(rows, items)


def percent(value: float) -> str:
    return f"{100 * value:.3f}%"


def interval(estimate: Estimate, formatter=percent) -> str:
    return f"[{formatter(estimate.low)}, {formatter(estimate.high)}]"


def ratio(value: float) -> str:
    return f"{value:.2f}"


def table(result: Replay, random: BanditLog, bts: BanditLog) -> list[str]:
    rows = [
        "| policy | rows | click rate | 95% interval | / random | 95% interval | ESS |",
        "|---|---|---|---|---|---|---|",
    ]
    logged = result.logged
    rows.append(
        f"| uniform random, logged, evaluation half | {len(result.evaluation):,} | "
        f"{percent(logged.value)} | {interval(logged)} | 1 | | {len(result.evaluation):,} |"
    )
    for policy in result.policies:
        found = policy.estimates
        for number, label in enumerate(("IPS", "SNIPS", "DR")):
            estimate = (found.ips, found.snips, found.dr)[number]
            share = policy.ratios[number]
            rows.append(
                f"| {POLICY_NAMES[policy.name]}, {label} | {found.impressions:,} | "
                f"{percent(estimate.value)} | {interval(estimate)} | {ratio(share.value)} | "
                f"{interval(share, ratio)} | {found.effective_sample_size:,.0f} |"
            )
    random_rate, bts_rate = mean_interval(random.click), mean_interval(bts.click)
    on_policy = on_policy_ratio(bts.click, random.click)
    rows.append(
        f"| uniform random, logged, whole sample | {len(random):,} | "
        f"{percent(random_rate.value)} | {interval(random_rate)} | 1 | | |"
    )
    rows.append(
        f"| Bernoulli TS, logged, whole sample | {len(bts):,} | {percent(bts_rate.value)} | "
        f"{interval(bts_rate)} | {ratio(on_policy.value)} | {interval(on_policy, ratio)} | |"
    )
    for policy, label in (("random", "uniform random"), ("bts", "Bernoulli TS")):
        n, rate, half = PUBLISHED[policy]
        share = "1" if policy == "random" else f"{PUBLISHED_RATIO:.2f}"
        rows.append(
            f"| {label}, published, full dataset | {n:,} | {percent(rate)} | "
            f"[{percent(rate - half)}, {percent(rate + half)}] | {share} | | |"
        )
    return rows


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    path = source_package(args.cache)
    download = time.perf_counter() - started
    with tarfile.open(path) as archive:
        random, bts = read_sample(archive, "random"), read_sample(archive, "bts")
    settings = default_settings(
        prior_alpha=args.prior_alpha,
        prior_beta=args.prior_beta,
        half_life_days=args.half_life_days,
    )
    params = settings.posterior_parameters()
    progress(f"training on {args.train_share:.0%} of {len(random):,} random-policy rows")
    result = replay(
        random, params, np.random.default_rng(args.seed), train_share=args.train_share,
        draws=args.draws,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    training, evaluation = result.training, result.evaluation
    means = result.alpha / (result.alpha + result.beta)
    ranked = result.policies[0].probabilities
    exact, sampled = ranked.errors[:, :2], ranked.errors[:, 2:]
    print(
        f"Open Bandit Dataset sample ({ARCHIVE}), campaign ALL, {random.n_items} items in "
        f"{random.positions} positions: uniform random {len(random):,} rows "
        f"({int(random.click.sum())} clicks), Bernoulli TS {len(bts):,} rows "
        f"({int(bts.click.sum())} clicks)"
    )
    print(
        f"training: {len(training):,} random-policy rows ({int(training.click.sum())} clicks) "
        f"before {time.strftime('%Y-%m-%d %H:%M', time.gmtime(result.split))} UTC; "
        f"prior Beta({params.prior_alpha:g}, {params.prior_beta:g}), half-life "
        f"{params.half_life_days:g} days, the click as the reward"
    )
    print(
        f"  posterior means {means.min():.4f} .. {means.max():.4f}; Thompson sampling's "
        f"largest probability at position 1: {ranked.probabilities[:, 0].max():.4f}"
    )
    print(
        f"evaluation: {len(evaluation):,} rows ({int(evaluation.click.sum())} clicks); "
        f"positions 1-2 by quadrature (error bound <= {exact.max():.1e}), position 3 by "
        f"Monte Carlo ({args.draws:,} draws, seed {args.seed}, standard error <= "
        f"{sampled.max() if sampled.size else 0.0:.1e})"
    )
    for policy in result.policies:
        print(f"  {POLICY_NAMES[policy.name]}: max weight {policy.estimates.max_weight:.2f}")
    print()
    print("\n".join(table(result, random, bts)))
    print()
    fetched = f", {download:.1f} s of it the download" if download > 0.5 else ""
    print(f"machine: {machine_description()}; wall time {seconds:.1f} s{fetched}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
