"""The report as one standalone HTML page: its plots embedded as PNG ``data:`` URIs, no
script, no external resource. Every text that comes from the warehouse or a truth file
(surfaces, items, reasons, actors) is escaped."""

from __future__ import annotations

import base64
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

from bandit_pipeline.report import plots
from bandit_pipeline.report.stats import CORE_METRICS

if TYPE_CHECKING:
    from bandit_pipeline.report.build import PriorComparison, Sections
    from bandit_pipeline.settings import Settings

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.pass { color: #176b1d; font-weight: bold; } .fail { color: #a11; font-weight: bold; }
#verdict { font-size: 1.4em; padding: 0.4em 0.8em; border: 2px solid; display: inline-block; }
.nodata { color: #777; font-style: italic; }
img { max-width: 100%; }
"""


def render(sections: Sections, images: dict[str, bytes], settings: Settings) -> str:
    """The whole page."""
    s = sections
    title = f"Exploration report: {_t(s.since)} to {_t(s.until)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Namespace <code>{escape(s.namespace)}</code>; impressions of the windows from "
        f"{_t(s.since)} (included) to {_t(s.until)} (excluded), all times UTC."
        + (
            f" Dry run, scenario <code>{escape(s.truth_scenario)}</code>."
            if s.truth_scenario is not None
            else ""
        )
        + "</p>",
        _verdict(s),
        _criteria(s, settings),
        _exploration(s, images),
        _readout(s, images),
        _posteriors(s, images),
        _timeline(s, images),
        _variance(s, images),
        _regret(s, images),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _t(moment: datetime | None) -> str:
    return "-" if moment is None else escape(moment.strftime("%Y-%m-%d %H:%M"))


def _n(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None else format(value, fmt)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2%}"


def _img(images: dict[str, bytes], name: str, alt: str) -> str:
    if name not in images:
        return ""
    encoded = base64.b64encode(images[name]).decode("ascii")
    return f'<p><img src="data:image/png;base64,{encoded}" alt="{escape(alt)}"></p>'


def _table(header: list[str], rows: list[list[str]], table_id: str | None = None) -> str:
    """A table of already-escaped cells."""
    attribute = f' id="{table_id}"' if table_id else ""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(section_id: str, heading: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{escape(heading)}</h2>\n{body}\n</section>'


def _nodata(what: str) -> str:
    return f'<p class="nodata">No data: {escape(what)}.</p>'


def _verdict(s: Sections) -> str:
    passed = sum(c.passed for c in s.criteria)
    word = "PASS: ready to widen the rollout" if s.passed else "FAIL: do not widen yet"
    css = "pass" if s.passed else "fail"
    return f'<p id="verdict" class="{css}">{word} ({passed}/{len(s.criteria)} criteria pass)</p>'


def _criteria(s: Sections, settings: Settings) -> str:
    rows = [
        [
            escape(c.label),
            '<span class="pass">pass</span>' if c.passed else '<span class="fail">fail</span>',
            escape(c.detail),
        ]
        for c in s.criteria
    ]
    note = (
        "<p>Thresholds: <code>BANDIT_WIDEN_MIN_HOURS</code>="
        f"{settings.widen_min_hours}, <code>BANDIT_WIDEN_MIN_EXPLORE_IMPRESSIONS</code>="
        f"{settings.widen_min_explore_impressions}, <code>BANDIT_WIDEN_MIN_SRM_P_VALUE</code>="
        f"{settings.widen_min_srm_p_value:g}, <code>BANDIT_WIDEN_MAX_CORE_METRIC_DROP</code>="
        f"{settings.widen_max_core_metric_drop:g}. A core metric fails only when the upper end "
        "of the 95% interval of treatment / control - 1 is below minus the margin; missing "
        "evidence never passes.</p>"
    )
    return _section(
        "criteria",
        "Success criteria for widening the rollout",
        _table(["criterion", "result", "detail"], rows, "success-criteria") + note,
    )


def _exploration(s: Sections, images: dict[str, bytes]) -> str:
    heading = "1. Exploration against baseline, per surface and hour"
    if not s.hours:
        return _section("exploration", heading, _nodata("no rollups in the range"))
    intro = (
        "<p>CTR and reward per impression (configured weights) of the exploration slots "
        "against the other slots. The dashed line is the alert threshold: an alert opens when "
        f"exploration CTR stays below {s.alert_ctr_ratio:g} x baseline CTR for an hour.</p>"
    )
    totals: dict[str, list[float]] = {}
    for h in s.hours:
        t = totals.setdefault(h.surface, [0, 0.0, 0, 0.0])
        t[0] += h.explore_impressions
        t[1] += (h.explore_ctr or 0.0) * h.explore_impressions
        t[2] += h.baseline_impressions
        t[3] += (h.baseline_ctr or 0.0) * h.baseline_impressions
    rows = [
        [
            escape(surface),
            f"{int(n_x):,}",
            _n(c_x / n_x if n_x else None),
            f"{int(n_b):,}",
            _n(c_b / n_b if n_b else None),
            str(sum(1 for h in s.hours if h.surface == surface and h.explore_impressions)),
        ]
        for surface, (n_x, c_x, n_b, c_b) in sorted(totals.items())
    ]
    table = _table(
        [
            "surface",
            "explore impressions",
            "explore CTR",
            "baseline impressions",
            "baseline CTR",
            "hours with exploration",
        ],
        rows,
    )
    return _section(
        "exploration",
        heading,
        intro + table + _img(images, plots.EXPLORATION, "exploration against baseline"),
    )


def _readout(s: Sections, images: dict[str, bytes]) -> str:
    heading = "2. Treatment against control"
    if not s.comparisons:
        return _section("readout", heading, _nodata("no experiment traffic in the range"))
    rows = [
        [
            escape(c.surface),
            escape(c.experiment),
            escape(CORE_METRICS[c.metric]),
            f"{c.control_impressions:,}",
            f"{c.treatment_impressions:,}",
            _n(c.control_value),
            _n(c.treatment_value),
            _pct(c.relative_difference),
            "-" if c.ci_low is None else f"[{_pct(c.ci_low)}, {_pct(c.ci_high)}]",
        ]
        for c in s.comparisons
    ]
    srm_rows = [
        [
            escape(key),
            escape(experiment),
            f"{n_c:,}",
            f"{n_t:,}",
            "-" if holdout is None else f"{holdout:g}%",
            "-" if p is None else f"{p:.3g}",
        ]
        for key, (experiment, n_c, n_t, holdout, p) in sorted(s.srm.items())
    ]
    body = (
        "<p>The readout of <code>bandit_experiment_readout</code>, over the range only, with "
        "the weighted reward per impression besides: relative difference treatment / control "
        "- 1 and its 95% interval (delta method on the log of the ratio).</p>"
        + _table(
            [
                "surface",
                "experiment",
                "metric",
                "control impressions",
                "treatment impressions",
                "control",
                "treatment",
                "difference",
                "95% interval",
            ],
            rows,
        )
        + "<h3>Sample-ratio mismatch</h3><p>Chi-square test of the control share of "
        "users (the unit the experiment assigns) with an impression in the range against "
        "the recorded holdout; a small p-value means assignment or logging is broken and "
        "the differences above cannot be trusted.</p>"
        + _table(
            ["surface", "experiment", "control users", "treatment users", "holdout", "p-value"],
            srm_rows,
        )
        + _img(images, plots.READOUT, "treatment against control")
    )
    return _section("readout", heading, body)


def _posteriors(s: Sections, images: dict[str, bytes]) -> str:
    heading = "3. Posteriors of the most-explored fresh items"
    if not any(series.points for series in s.posteriors):
        return _section("posteriors", heading, _nodata("no posteriors stored in the range"))
    dry_run = s.truth_scenario is not None
    rows = []
    for series in s.posteriors:
        last = series.points[-1] if series.points else None
        row = [
            escape(series.surface),
            escape(series.item_id),
            f"{series.explore_impressions:,}",
            _t(last[0]) if last else "-",
            _n(last[1]) if last else "-",
            f"[{last[2]:.4f}, {last[3]:.4f}]" if last else "-",
        ]
        if dry_run:
            row.append(_n(series.truth[-1][1]) if series.truth else "-")
        rows.append(row)
    header = [
        "surface",
        "item",
        "explore impressions",
        "last update",
        "posterior mean",
        "95% credible interval",
    ] + (["true expected reward"] if dry_run else [])
    body = (
        "<p>Beta posterior of the normalised reward, as stored by each run that changed the "
        "item's evidence (between those runs it only decays towards the prior)"
        + ("; dashed: the simulator's hidden true expected reward" if dry_run else "")
        + ".</p>"
        + _table(header, rows)
        + _img(images, plots.POSTERIORS, "posteriors")
        + _priors(s)
    )
    return _section("posteriors", heading, body)


def _priors(s: Sections) -> str:
    """Which prior new items started from: the empirical one per surface, or the fixed."""
    if not s.priors:
        return "<p>New items started from the fixed prior (BANDIT_PRIOR_MODE=fixed).</p>"
    rows = [
        [
            escape(p.surface),
            _t(p.as_of),
            escape(p.method),
            f"{p.items:,}",
            f"Beta({p.alpha:.3f}, {p.beta:.3f})",
            _n(p.alpha / (p.alpha + p.beta)),
            f"{p.alpha + p.beta:.1f} (cap {p.max_strength:g})",
        ]
        for p in s.priors
    ]
    return (
        "<p>The empirical prior new items started from, at the range's last run: fitted to "
        "the items with at least the minimum evidence (docs/posterior.md).</p>"
        + _table(["surface", "as of", "method", "items fitted", "prior", "mean", "strength"], rows)
    )


def _timeline(s: Sections, images: dict[str, bytes]) -> str:
    heading = "4. Alerts and kill switch"
    if not s.alerts and not s.killswitch_events:
        return _section(
            "timeline", heading, _nodata("no alert and no kill-switch event in the range")
        )
    alert_rows = [
        [
            escape(a.surface),
            escape(a.kind),
            _t(a.opened_at),
            _t(a.resolved_at) if a.resolved_at else "open",
            f"{a.explore_impressions:,}",
            _n(a.explore_ctr),
            _n(a.baseline_ctr),
        ]
        for a in s.alerts
    ]
    event_rows = [
        [_t(e.at), escape(e.surface), escape(e.action), escape(e.actor), escape(e.reason)]
        for e in s.killswitch_events
    ]
    body = (
        "<h3>Alert episodes</h3>"
        + (
            _table(
                [
                    "surface",
                    "kind",
                    "opened",
                    "resolved",
                    "explore impressions",
                    "explore CTR",
                    "baseline CTR",
                ],
                alert_rows,
            )
            if alert_rows
            else _nodata("no alert episode")
        )
        + "<h3>Kill-switch trips and resets</h3>"
        + (
            _table(["at", "surface", "action", "by", "reason"], event_rows)
            if event_rows
            else _nodata("no kill-switch event")
        )
        + _img(images, plots.TIMELINE, "alert and kill-switch timeline")
    )
    return _section("timeline", heading, body)


def _variance(s: Sections, images: dict[str, bytes]) -> str:
    heading = "5. Reward variance per surface and event type"
    if not s.variance:
        return _section("variance", heading, _nodata("no explore impressions in the range"))
    weights = ", ".join(f"{escape(k)} {v:g}" for k, v in s.reward_weights.items())
    summary_rows = [
        [
            escape(v.surface),
            f"{v.impressions:,}",
            _n(v.mean),
            _n(v.variance, ".5f"),
            _n(v.standard_error, ".5f"),
        ]
        for v, _ in s.variance
    ]
    outcome_rows = [
        [
            escape(o.surface),
            escape(o.event_type),
            f"{o.weight:g}",
            _n(o.rate),
            _n(o.variance, ".5f"),
            _n(o.weighted_variance, ".5f"),
            "-" if o.share_of_reward_variance is None else f"{o.share_of_reward_variance:.1%}",
        ]
        for _, outcomes in s.variance
        for o in outcomes
    ]
    body = (
        f"<p>Explore impressions only; reward normalised by the largest weight (weights: "
        f"{weights}). Per event type: the rate, the variance of its indicator, and the "
        "variance of its weighted normalised indicator as a share of the reward variance. "
        "Outcomes overlap (the reward is the largest weight earned), so the shares need not "
        "add up to 100%: a share far above the others says that outcome drives the noise.</p>"
        + _table(
            [
                "surface",
                "explore impressions",
                "mean reward",
                "variance",
                "standard error of the mean",
            ],
            summary_rows,
        )
        + _table(
            [
                "surface",
                "event type",
                "weight",
                "rate",
                "variance",
                "weighted variance",
                "share of reward variance",
            ],
            outcome_rows,
        )
        + _img(images, plots.VARIANCE, "reward variance")
    )
    return _section("variance", heading, body)


def _regret(s: Sections, images: dict[str, bytes]) -> str:
    heading = "6. Cumulative regret (dry run)"
    if s.regret is None:
        return _section(
            "regret",
            heading,
            '<p class="nodata">Only in a dry run: give the truth file (<code>--truth</code>).</p>',
        )
    if not s.regret:
        return _section("regret", heading, _nodata("the truth file has no window in the range"))
    rows = [
        [
            escape(r.surface),
            str(len(r.window_starts)),
            _n(r.thompson[-1], ".2f"),
            _n(r.uniform[-1], ".2f"),
            _n(r.no_exploration[-1], ".2f"),
        ]
        for r in s.regret
    ]
    body = (
        "<p>The true expected reward of the best eligible candidate minus that of the item "
        "shown, summed over explore slots, for Thompson sampling as served and, on the same "
        "slots, for uniform random choice and for no exploration.</p>"
        + _table(
            ["surface", "windows", "Thompson sampling", "uniform random", "no exploration"], rows
        )
        + _img(images, plots.REGRET, "cumulative regret")
        + _prior_comparison(s.prior_comparison)
    )
    return _section("regret", heading, body)


def _prior_comparison(comparison: PriorComparison | None) -> str:
    if comparison is None:
        return ""
    ratio = comparison.ratio
    return (
        "<h3>The prior of new items</h3><p>The exploration policy alone, run twice on the "
        "shop's hidden rates with the same seed and traffic over the first simulated day: "
        "new items launching one after another, a third of the fresh items graduated "
        "before the start (the evidence the empirical prior is fitted to), posteriors "
        "updated every 15 minutes. Target: the empirical prior's regret at most 60% of "
        "the fixed prior's.</p>"
        + _table(
            ["windows", "fixed prior", "empirical prior", "uniform random", "empirical / fixed"],
            [
                [
                    str(comparison.windows),
                    _n(comparison.fixed, ".2f"),
                    _n(comparison.empirical, ".2f"),
                    _n(comparison.uniform, ".2f"),
                    "-" if ratio is None else f"{ratio:.0%}",
                ]
            ],
        )
    )
