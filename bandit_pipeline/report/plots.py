"""The report's plots as PNG bytes (matplotlib, Agg backend: no display needed).

Import this module only when drawing: matplotlib is slow to import and the rest of the
product never needs it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from bandit_pipeline.report.stats import CORE_METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bandit_pipeline.report.build import Sections

IMAGE_PREFIX = "report-"
# The file name of each plot, in page order.
EXPLORATION = f"{IMAGE_PREFIX}1-exploration.png"
READOUT = f"{IMAGE_PREFIX}2-treatment-vs-control.png"
POSTERIORS = f"{IMAGE_PREFIX}3-posteriors.png"
TIMELINE = f"{IMAGE_PREFIX}4-alerts-and-kill-switch.png"
VARIANCE = f"{IMAGE_PREFIX}5-reward-variance.png"
REGRET = f"{IMAGE_PREFIX}6-regret.png"


def draw_all(sections: Sections, margin: float) -> dict[str, bytes]:
    """Every plot that has data to show, by file name (a section without data has none)."""
    images = {}
    if sections.hours:
        images[EXPLORATION] = _png(exploration(sections))
    if sections.comparisons:
        images[READOUT] = _png(readout(sections, margin))
    if any(series.points for series in sections.posteriors):
        images[POSTERIORS] = _png(posteriors(sections))
    if sections.alerts or sections.killswitch_events:
        images[TIMELINE] = _png(timeline(sections))
    if sections.variance:
        images[VARIANCE] = _png(variance(sections))
    if sections.regret:
        images[REGRET] = _png(regret(sections))
    return images


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _time_axis(axis) -> None:
    axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))


def exploration(sections: Sections) -> Figure:
    """Per surface: hourly CTR of exploration and baseline with the alert threshold, and
    reward per impression of both."""
    surfaces = sorted({h.surface for h in sections.hours})
    figure, axes = plt.subplots(len(surfaces), 2, figsize=(12, 3.2 * len(surfaces)), squeeze=False)
    for row, surface in enumerate(surfaces):
        hours = [h for h in sections.hours if h.surface == surface]
        x = [h.hour for h in hours]
        ctr, rpi = axes[row]
        ctr.plot(x, [h.explore_ctr for h in hours], marker=".", label="exploration")
        ctr.plot(x, [h.baseline_ctr for h in hours], marker=".", label="baseline")
        ctr.plot(
            x,
            [h.alert_threshold for h in hours],
            linestyle="--",
            color="red",
            label=f"alert threshold ({sections.alert_ctr_ratio:g} x baseline)",
        )
        ctr.set_title(f"{surface}: CTR per hour")
        rpi.plot(
            x, [h.explore_reward_per_impression for h in hours], marker=".", label="exploration"
        )
        rpi.plot(x, [h.baseline_reward_per_impression for h in hours], marker=".", label="baseline")
        rpi.set_title(f"{surface}: reward per impression per hour")
        for axis in (ctr, rpi):
            axis.set_ylim(bottom=0)
            axis.legend(fontsize="small")
            _time_axis(axis)
    figure.tight_layout()
    return figure


def readout(sections: Sections, margin: float) -> Figure:
    """Relative difference treatment / control - 1 with its 95% interval, per metric and
    surface, against the widening margin."""
    rows = [c for c in sections.comparisons if c.relative_difference is not None]
    figure, axis = plt.subplots(figsize=(9, 0.45 * max(len(rows), 1) + 1.5))
    labels = []
    for i, c in enumerate(rows):
        y = len(rows) - i
        axis.plot([c.relative_difference], [y], "o", color="black")
        if c.ci_low is not None:
            axis.plot([c.ci_low, c.ci_high], [y, y], color="black")
        labels.append((y, f"{c.surface} {CORE_METRICS[c.metric]}"))
    axis.axvline(0, color="grey", linewidth=1)
    axis.axvline(-margin, color="red", linestyle="--", label=f"-{margin:.0%} margin")
    axis.set_yticks([y for y, _ in labels], [label for _, label in labels])
    axis.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    axis.set_xlabel("treatment / control - 1 (95% interval)")
    axis.legend(fontsize="small")
    figure.tight_layout()
    return figure


def posteriors(sections: Sections) -> Figure:
    """Per surface: posterior mean and 95% credible band of the most-explored items, and
    in a dry run their hidden true expected reward (dashed)."""
    surfaces = sorted({s.surface for s in sections.posteriors if s.points})
    figure, axes = plt.subplots(len(surfaces), 1, figsize=(10, 3.4 * len(surfaces)), squeeze=False)
    for axis, surface in zip(axes[:, 0], surfaces, strict=True):
        for number, series in enumerate(s for s in sections.posteriors if s.surface == surface):
            if not series.points:
                continue
            colour = f"C{number}"
            x = [p[0] for p in series.points]
            axis.step(
                x,
                [p[1] for p in series.points],
                where="post",
                color=colour,
                label=f"{series.item_id} posterior mean",
            )
            axis.fill_between(
                x,
                [p[2] for p in series.points],
                [p[3] for p in series.points],
                step="post",
                color=colour,
                alpha=0.2,
            )
            if series.truth:
                tx = [t[0] for t in series.truth] + [sections.until]
                ty = [t[1] for t in series.truth]
                axis.step(
                    tx,
                    [*ty, ty[-1]],
                    where="post",
                    color=colour,
                    linestyle="--",
                    label=f"{series.item_id} true expected reward",
                )
        axis.set_title(f"{surface}: posterior of the most-explored items (95% credible band)")
        axis.set_ylim(0, 1)
        axis.legend(fontsize="small")
        _time_axis(axis)
    figure.tight_layout()
    return figure


def timeline(sections: Sections) -> Figure:
    """Alert episodes as bars and kill-switch trips and resets as markers, per surface."""
    surfaces = sorted(
        {a.surface for a in sections.alerts} | {e.surface for e in sections.killswitch_events}
    )
    figure, axis = plt.subplots(figsize=(10, 0.6 * len(surfaces) + 1.8))
    for y, surface in enumerate(surfaces):
        for alert in (a for a in sections.alerts if a.surface == surface):
            start = max(alert.opened_at, sections.since)
            end = min(alert.resolved_at or sections.until, sections.until)
            axis.barh(
                y,
                mdates.date2num(end) - mdates.date2num(start),
                left=mdates.date2num(start),
                height=0.4,
                color="orange",
            )
        for event in (e for e in sections.killswitch_events if e.surface == surface):
            marker, colour = ("v", "red") if event.action == "trip" else ("^", "green")
            axis.plot([event.at], [y], marker=marker, color=colour, markersize=10)
    axis.set_yticks(range(len(surfaces)), surfaces)
    axis.set_ylim(-0.6, len(surfaces) - 0.4)
    axis.set_xlim(sections.since, sections.until)
    axis.set_title("alerts (bars), kill switch trips (red) and resets (green)")
    _time_axis(axis)
    figure.tight_layout()
    return figure


def variance(sections: Sections) -> Figure:
    """Per surface: each outcome's weighted variance as a share of the reward variance."""
    figure, axis = plt.subplots(figsize=(9, 3.5))
    surfaces = [summary.surface for summary, _ in sections.variance]
    width = 0.8 / 3
    for k, event_type in enumerate(("click", "add_to_cart", "purchase")):
        shares = [
            next(o.share_of_reward_variance or 0.0 for o in outcomes if o.event_type == event_type)
            for _, outcomes in sections.variance
        ]
        axis.bar(
            [i + (k - 1) * width for i in range(len(surfaces))], shares, width, label=event_type
        )
    axis.set_xticks(range(len(surfaces)), surfaces)
    axis.set_ylabel("share of reward variance")
    axis.set_title("explore impressions: weighted outcome variance / reward variance")
    axis.legend(fontsize="small")
    figure.tight_layout()
    return figure


def regret(sections: Sections) -> Figure:
    """Cumulative regret of Thompson sampling, uniform random and no exploration."""
    series = sections.regret or []
    figure, axes = plt.subplots(len(series), 1, figsize=(10, 3 * len(series)), squeeze=False)
    for axis, s in zip(axes[:, 0], series, strict=True):
        axis.plot(s.window_starts, s.thompson, label="Thompson sampling")
        axis.plot(s.window_starts, s.uniform, label="uniform random")
        axis.plot(s.window_starts, s.no_exploration, label="no exploration")
        axis.set_title(f"{s.surface}: cumulative regret")
        axis.legend(fontsize="small")
        _time_axis(axis)
    figure.tight_layout()
    return figure
