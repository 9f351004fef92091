"""``write_report``: the warehouse (and, in a dry run, the simulator's truth) over a range
turned into one HTML page with its plots beside it.

The steps stay apart so that each can be tested alone: ``data`` reads, ``summarise``
computes the sections (pure), ``criteria`` judges them, ``plots`` draws, ``page`` writes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from bandit_pipeline.report.criteria import (
    Criterion,
    Evidence,
    all_passed,
    evaluate,
    open_at,
    tripped_in_range,
)
from bandit_pipeline.report.data import (
    AlertEpisode,
    KillSwitchEvent,
    SurfacePrior,
    WarehouseData,
    read_warehouse,
)
from bandit_pipeline.report.stats import (
    Comparison,
    OutcomeVariance,
    RewardVariance,
    Totals,
    beta_interval,
    compare,
    reward_variance,
    srm_p_value,
)
from bandit_pipeline.settings import Settings
from bandit_pipeline.simulate.truth import DryRunTruth

HOUR = timedelta(hours=1)
PAGE_NAME = "report.html"


class ReportError(ValueError):
    """The report cannot be made from this input (the message names the problem)."""


@dataclass(frozen=True)
class HourRow:
    """Exploration against baseline on one surface for one hour of the range."""

    surface: str
    hour: datetime
    explore_impressions: int
    explore_ctr: float | None
    baseline_impressions: int
    baseline_ctr: float | None
    explore_reward_per_impression: float | None
    baseline_reward_per_impression: float | None
    alert_threshold: float | None  # alert_ctr_ratio x baseline CTR


@dataclass(frozen=True)
class PosteriorSeries:
    """One item's posterior over the range, and its hidden true reward in a dry run."""

    surface: str
    item_id: str
    explore_impressions: int
    points: list[tuple[datetime, float, float, float]]  # as_of, mean, 95% low, 95% high
    truth: list[tuple[datetime, float]] = field(default_factory=list)  # from, expected reward


@dataclass(frozen=True)
class RegretSeries:
    """Cumulative regret of each policy on one surface (or "all") over the range."""

    surface: str
    window_starts: list[datetime]
    thompson: list[float]
    uniform: list[float]
    no_exploration: list[float]


@dataclass(frozen=True)
class PriorComparison:
    """The dry run's closed-loop comparison of the two priors over its first simulated
    day (simulate/prior_regret.py): cumulative regret per explore slot, summed."""

    windows: int
    fixed: float
    empirical: float
    uniform: float

    @property
    def ratio(self) -> float | None:
        """Empirical over fixed: the share of the fixed prior's regret that remains."""
        return self.empirical / self.fixed if self.fixed > 0 else None


@dataclass
class Sections:
    """Every section of the page, computed from what was read (pure data)."""

    namespace: str
    since: datetime
    until: datetime
    alert_ctr_ratio: float
    reward_weights: dict[str, float]
    surfaces: list[str]
    hours: list[HourRow]
    comparisons: list[Comparison]
    srm: dict[str, tuple[str, int, int, float | None, float | None]]  # key -> details
    posteriors: list[PosteriorSeries]
    priors: list[SurfacePrior]  # the empirical prior per surface; empty: the fixed prior
    alerts: list[AlertEpisode]
    killswitch_events: list[KillSwitchEvent]  # within the range
    variance: list[tuple[RewardVariance, list[OutcomeVariance]]]
    regret: list[RegretSeries] | None  # None without a truth file
    prior_comparison: PriorComparison | None  # None without one in the truth file
    truth_scenario: str | None
    criteria: list[Criterion]
    passed: bool


@dataclass(frozen=True)
class Report:
    """What ``write_report`` wrote, and the verdict on widening the rollout."""

    html_path: Path
    image_paths: tuple[Path, ...]
    namespace: str
    since: datetime
    until: datetime
    criteria: tuple[Criterion, ...]
    passed: bool

    def verdict_lines(self) -> list[str]:
        """A few lines for a terminal: the verdict, then each failed criterion."""
        word = "PASS: ready to widen" if self.passed else "FAIL: do not widen yet"
        lines = [
            f"verdict: {word} ({sum(c.passed for c in self.criteria)}/"
            f"{len(self.criteria)} criteria pass)"
        ]
        lines += [f"  failed: {c.label} ({c.detail})" for c in self.criteria if not c.passed]
        return lines


def load_truth(path: str | Path) -> DryRunTruth:
    """The dry run's truth file, or a :class:`ReportError` naming the file and the problem."""
    try:
        return DryRunTruth.read(path)
    except OSError as exc:
        raise ReportError(f"cannot read the truth file {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"the truth file {path} is not JSON: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportError(
            f"the truth file {path} is not a dry run's truth "
            f"(written by DryRunTruth.write): {type(exc).__name__}: {exc}"
        ) from None


def write_report(
    engine: Engine,
    settings: Settings,
    since: datetime,
    until: datetime,
    out_dir: str | Path,
    truth: DryRunTruth | None = None,
) -> Report:
    """Read the range [since, until) of the warehouse, write ``out_dir/report.html`` (its
    images embedded) and the same PNGs beside it, and return the verdict."""
    since, until = _utc(since, "since"), _utc(until, "until")
    if until <= since:
        raise ReportError(
            f"--until ({until.isoformat()}) must be after --since ({since.isoformat()})"
        )
    if truth is not None and truth.namespace != settings.namespace:
        raise ReportError(
            f"the truth file is for namespace {truth.namespace!r}, the report reads "
            f"{settings.namespace!r} (set BANDIT_NAMESPACE)"
        )
    data = read_warehouse(engine, settings.namespace, since, until)
    sections = summarise(data, settings, truth)

    from bandit_pipeline.report import page, plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = plots.draw_all(sections, settings.widen_max_core_metric_drop)
    for stale in out.glob(f"{plots.IMAGE_PREFIX}*.png"):
        stale.unlink()  # an earlier report's plots would otherwise sit beside this page
    paths = []
    for name, png in images.items():
        path = out / name
        path.write_bytes(png)
        paths.append(path)
    html_path = out / PAGE_NAME
    html_path.write_text(page.render(sections, images, settings), encoding="utf-8")
    return Report(
        html_path,
        tuple(paths),
        settings.namespace,
        since,
        until,
        tuple(sections.criteria),
        sections.passed,
    )


def summarise(data: WarehouseData, settings: Settings, truth: DryRunTruth | None) -> Sections:
    """The sections of the page from what was read: pure computation, no I/O."""
    surfaces = sorted({w.surface for w in data.windows} | {g.surface for g in data.groups})
    hours = _hours(data, settings.alert_ctr_ratio)
    comparisons, srm = _readout(data)
    variance = []
    explore_by_surface: dict[str, Totals] = defaultdict(Totals)
    for group in data.groups:
        if group.explore:
            explore_by_surface[group.surface] += group.totals
    for surface, totals in sorted(explore_by_surface.items()):
        result = reward_variance(surface, totals, settings.reward_weights)
        if result is not None:
            variance.append(result)
    in_range = [e for e in data.killswitch_events if e.at >= data.since]
    evidence = Evidence(
        open_alert_surfaces=open_at(data.alerts, data.until),
        tripped_surfaces=tripped_in_range(data.killswitch_events, data.since, data.until),
        srm_p_values={key: value[4] for key, value in srm.items()},
        comparisons=comparisons,
        explore_hours=len({h.hour for h in hours if h.explore_impressions > 0}),
        explore_impressions=sum(t.impressions for t in explore_by_surface.values()),
    )
    criteria = evaluate(evidence, settings.widening_thresholds())
    return Sections(
        namespace=data.namespace,
        since=data.since,
        until=data.until,
        alert_ctr_ratio=settings.alert_ctr_ratio,
        reward_weights=settings.reward_weights,
        surfaces=surfaces,
        hours=hours,
        comparisons=comparisons,
        srm=srm,
        posteriors=_posteriors(data, truth),
        priors=data.priors,
        alerts=data.alerts,
        killswitch_events=in_range,
        variance=variance,
        regret=None if truth is None else _regret(truth, data.since, data.until),
        prior_comparison=None if truth is None else _prior_comparison(truth),
        truth_scenario=None if truth is None else truth.scenario,
        criteria=criteria,
        passed=all_passed(criteria),
    )


def _utc(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise ReportError(f"{name} must be a datetime, got {type(moment).__name__}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _hours(data: WarehouseData, ratio: float) -> list[HourRow]:
    sums: dict[tuple[str, datetime], list[float]] = defaultdict(lambda: [0.0] * 6)
    for w in data.windows:
        hour = w.window_start.replace(minute=0, second=0, microsecond=0)
        row = sums[(w.surface, hour)]
        for i, value in enumerate(
            (
                w.explore_impressions,
                w.explore_clicks,
                w.explore_reward_sum,
                w.baseline_impressions,
                w.baseline_clicks,
                w.baseline_reward_sum,
            )
        ):
            row[i] += value
    rows = []
    for (surface, hour), (n_x, c_x, r_x, n_b, c_b, r_b) in sorted(sums.items()):
        baseline_ctr = c_b / n_b if n_b else None
        rows.append(
            HourRow(
                surface,
                hour,
                int(n_x),
                c_x / n_x if n_x else None,
                int(n_b),
                baseline_ctr,
                r_x / n_x if n_x else None,
                r_b / n_b if n_b else None,
                None if baseline_ctr is None else ratio * baseline_ctr,
            )
        )
    return rows


def _readout(
    data: WarehouseData,
) -> tuple[list[Comparison], dict[str, tuple[str, int, int, float | None, float | None]]]:
    """Treatment against control per surface and experiment, and the SRM check of each."""
    variants: dict[tuple[str, str], dict[str, Totals]] = defaultdict(
        lambda: {"treatment": Totals(), "control": Totals()}
    )
    for group in data.groups:
        if group.experiment and group.variant in ("treatment", "control"):
            variants[(group.surface, group.experiment)][group.variant] += group.totals
    experiments = {experiment for _, experiment in variants}
    comparisons, srm = [], {}
    for (surface, experiment), both in sorted(variants.items()):
        comparisons += compare(surface, experiment, both["treatment"], both["control"])
        holdout = data.holdouts.get(experiment)
        n_c, n_t = data.assignment_users.get((surface, experiment), (0, 0))
        p = None if holdout is None else srm_p_value(n_c, n_t, holdout)
        key = surface if len(experiments) == 1 else f"{surface}/{experiment}"
        srm[key] = (experiment, n_c, n_t, holdout, p)
    return comparisons, srm


def _posteriors(data: WarehouseData, truth: DryRunTruth | None) -> list[PosteriorSeries]:
    points: dict[tuple[str, str], list] = defaultdict(list)
    for p in data.posteriors:
        points[(p.surface, p.item_id)].append((p.as_of, *beta_interval(p.alpha, p.beta)))
    true: dict[tuple[str, str], list] = defaultdict(list)
    if truth is not None:
        for row in sorted(truth.true_rewards, key=lambda r: r.at):
            at = _utc(row.at, "truth")
            if at <= data.until:
                true[(row.surface, row.item_id)].append((at, row.expected_reward))
    return [
        PosteriorSeries(surface, item, impressions, points[(surface, item)], true[(surface, item)])
        for surface, item, impressions in data.most_explored
    ]


def _prior_comparison(truth: DryRunTruth) -> PriorComparison | None:
    if not truth.prior_regret:
        return None
    last = max(truth.prior_regret, key=lambda r: r.window_start)
    return PriorComparison(len(truth.prior_regret), last.fixed, last.empirical, last.uniform)


def _regret(truth: DryRunTruth, since: datetime, until: datetime) -> list[RegretSeries]:
    by_surface: dict[str, list] = defaultdict(list)
    for row in sorted(truth.regret, key=lambda r: r.window_start):
        start = _utc(row.window_start, "truth")
        if since <= start < until:
            by_surface[row.surface].append((start, row.thompson, row.uniform, row.no_exploration))
            by_surface["all"].append((start, row.thompson, row.uniform, row.no_exploration))
    if len(by_surface) == 2:  # one surface: "all" would repeat it
        del by_surface["all"]
    series = []
    for surface in sorted(by_surface, key=lambda s: (s == "all", s)):
        rows = by_surface[surface]
        totals = [0.0, 0.0, 0.0]
        cumulative: list[list[float]] = [[], [], []]
        for _, *values in rows:
            for i, value in enumerate(values):
                totals[i] += value
                cumulative[i].append(totals[i])
        series.append(RegretSeries(surface, [r[0] for r in rows], *cumulative))
    return series
