"""bandit-pipeline report: the success criteria (pure), the statistics against the
experiment readout view, and whole pages written from real warehouses."""

from __future__ import annotations

import base64
import io
import re
from datetime import timedelta

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy import stats

from bandit_pipeline.cli import main
from bandit_pipeline.monitoring.alerts import evaluate_ctr_alerts
from bandit_pipeline.monitoring.killswitch import evaluate_killswitch, reset_killswitch
from bandit_pipeline.monitoring.readout import experiment_readout
from bandit_pipeline.monitoring.rollups import materialise_metrics
from bandit_pipeline.report import ReportError, write_report
from bandit_pipeline.report.build import load_truth
from bandit_pipeline.report.criteria import (
    Evidence,
    WideningThresholds,
    all_passed,
    evaluate,
    open_at,
    tripped_in_range,
)
from bandit_pipeline.report.data import AlertEpisode, KillSwitchEvent, read_warehouse
from bandit_pipeline.report.stats import Comparison, Totals, compare, srm_p_value
from bandit_pipeline.settings import default_settings
from bandit_pipeline.simulate.truth import DryRunTruth, RegretWindow, TrueReward
from bandit_pipeline.timing import WINDOW
from bandit_pipeline.window_update import materialise_window
from bandit_pipeline_tests.helpers import (
    FUTURE_SCAN,
    PARAMS,
    START,
    as_of,
    load_events,
    logged_event,
    reset,
)

THRESHOLDS = WideningThresholds(
    min_hours=2, min_explore_impressions=100, min_srm_p_value=0.001, max_core_metric_drop=0.05
)
N_WINDOWS = 8  # two hours: one bad (alert, trip), one good (the alert resolves)
SECTIONS = ("criteria", "exploration", "readout", "posteriors", "timeline", "variance", "regret")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script>"


# --- The criteria, pure: each line passing and failing.


def comparison(metric: str, low: float | None, high: float | None) -> Comparison:
    diff = None if low is None else (low + high) / 2
    return Comparison("home", "x", metric, 1000, 9000, 0.1, 0.1, diff, low, high)


def good_evidence(**changes) -> Evidence:
    metrics = ("ctr", "add_to_cart_rate", "purchase_rate", "reward_per_impression")
    fields = {
        "open_alert_surfaces": [],
        "tripped_surfaces": [],
        "srm_p_values": {"home": 0.4},
        "comparisons": [comparison(m, -0.08, 0.02) for m in metrics],
        "explore_hours": 2,
        "explore_impressions": 100,
        **changes,
    }
    return Evidence(**fields)


def lines(evidence: Evidence) -> dict[str, bool]:
    return {c.key: c.passed for c in evaluate(evidence, THRESHOLDS)}


def test_good_evidence_passes_every_line():
    criteria = evaluate(good_evidence(), THRESHOLDS)
    assert len(criteria) == 9
    assert all(c.passed for c in criteria)
    assert all_passed(criteria)


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"open_alert_surfaces": ["home"]}, "no_open_alert"),
        ({"tripped_surfaces": ["cart"]}, "killswitch_not_tripped"),
        ({"srm_p_values": {"home": 0.0009}}, "srm"),
        ({"srm_p_values": {"home": 0.5, "cart": None}}, "srm"),  # no holdout recorded
        ({"srm_p_values": {}}, "srm"),  # no experiment traffic
        ({"explore_hours": 1}, "explore_hours"),
        ({"explore_impressions": 99}, "explore_impressions"),
    ],
)
def test_each_line_fails_alone(change, failing):
    result = lines(good_evidence(**change))
    assert [key for key, passed in result.items() if not passed] == [failing]
    assert not all_passed(evaluate(good_evidence(**change), THRESHOLDS))


@pytest.mark.parametrize("metric", ["ctr", "add_to_cart_rate", "purchase_rate",
                                    "reward_per_impression"])  # fmt: skip
def test_a_core_metric_fails_only_when_its_whole_interval_is_below_the_margin(metric):
    others = [c for c in good_evidence().comparisons if c.metric != metric]
    key = f"core_{metric}"
    # The upper end just above -5%: not surely worse by more than the margin.
    assert lines(good_evidence(comparisons=[*others, comparison(metric, -0.2, -0.049)]))[key]
    # The upper end below -5%: fails.
    worse = lines(good_evidence(comparisons=[*others, comparison(metric, -0.2, -0.051)]))
    assert [k for k, passed in worse.items() if not passed] == [key]
    # No interval (no events in a variant) or no traffic: missing evidence never passes.
    assert not lines(good_evidence(comparisons=[*others, comparison(metric, None, None)]))[key]
    assert not lines(good_evidence(comparisons=others))[key]


def test_alert_open_at_the_end_and_trips_in_the_range():
    t0 = START
    episodes = [
        AlertEpisode(1, "k", "home", t0, t0 + timedelta(hours=1), 300, 0.01, 0.2),
        AlertEpisode(2, "k", "cart", t0, None, 300, 0.01, 0.2),
    ]
    assert open_at(episodes, t0 + timedelta(minutes=30)) == ["cart", "home"]
    assert open_at(episodes, t0 + timedelta(hours=1)) == ["cart"]  # resolved at that instant
    assert open_at(episodes, t0 - timedelta(minutes=1)) == []

    def ev(surface, action, minutes):
        return KillSwitchEvent(surface, action, "r", "a", t0 + timedelta(minutes=minutes))

    since, until = t0, t0 + timedelta(hours=2)
    assert tripped_in_range([], since, until) == []
    assert tripped_in_range([ev("home", "trip", 10), ev("home", "reset", 20)], since, until) == [
        "home"
    ]  # tripped during the range, even if reset since
    assert tripped_in_range([ev("cart", "trip", -60)], since, until) == ["cart"]  # still tripped
    assert tripped_in_range([ev("cart", "trip", -60), ev("cart", "reset", -30)], since, until) == []
    assert tripped_in_range([ev("pdp", "trip", 121)], since, until) == []  # after the range


def test_the_interval_of_a_rate_and_of_the_reward_against_independent_formulas():
    # reward_sq_sum from independent per-impression rewards: 27 purchases (5), 63 carts
    # without purchase (3), 360 clicks only (1).
    rewards_t = np.array([5.0] * 27 + [3.0] * 63 + [1.0] * 360 + [0.0] * 8550)
    rewards_c = np.array([5.0] * 2 + [3.0] * 8 + [1.0] * 40 + [0.0] * 950)
    treatment = Totals(9000, 450, 90, 27, rewards_t.sum(), (rewards_t**2).sum())
    control = Totals(1000, 50, 10, 2, rewards_c.sum(), (rewards_c**2).sum())
    rows = {c.metric: c for c in compare("home", "x", treatment, control)}
    z = stats.norm.ppf(0.975)
    # CTR: the Katz log interval of a ratio of two proportions.
    se = np.sqrt(1 / 450 - 1 / 9000 + 1 / 50 - 1 / 1000)
    assert rows["ctr"].ci_low == pytest.approx(np.exp(np.log(0.05 / 0.05) - z * se) - 1)
    assert rows["ctr"].ci_high == pytest.approx(np.exp(z * se) - 1)
    # Reward per impression: delta method with each variant's sample variance.
    m_t, m_c = rewards_t.mean(), rewards_c.mean()
    se_r = np.sqrt(rewards_t.var() / (9000 * m_t**2) + rewards_c.var() / (1000 * m_c**2))
    row = rows["reward_per_impression"]
    assert (row.treatment_value, row.control_value) == (pytest.approx(m_t), pytest.approx(m_c))
    assert row.relative_difference == pytest.approx(m_t / m_c - 1)
    assert row.ci_low == pytest.approx(np.exp(np.log(m_t / m_c) - z * se_r) - 1)
    assert row.ci_high == pytest.approx(np.exp(np.log(m_t / m_c) + z * se_r) - 1)
    answer = stats.chisquare([1000, 9000], [1000, 9000])
    assert srm_p_value(1000, 9000, 10.0) == pytest.approx(answer.pvalue)
    assert srm_p_value(1200, 8800, 10.0) < 1e-6
    assert srm_p_value(0, 0, 10.0) is None


# --- A warehouse with rollups, an experiment, alerts, a kill-switch trip and posteriors.


def shop_window(window: int, explore_ctr: float) -> list:
    """One window of an experiment on `home`: treatment with explore and baseline slots,
    control (10%) with baseline slots only; clicks, then some add-to-carts and purchases."""
    rng = np.random.default_rng(1000 + window)
    begin = START + window * WINDOW
    events = []
    groups = [("treatment", True, 150, explore_ctr), ("treatment", False, 300, 0.2),
              ("control", False, 50, 0.2)]  # fmt: skip
    for g, (variant, explore, n, ctr) in enumerate(groups):
        for i in range(n):
            key = f"w{window}-{g}-{i}"
            at = begin + timedelta(seconds=float(rng.uniform(0, 800)))
            item = f"fresh-{i % 4}" if explore else f"ranked-{i % 10}"
            events.append(logged_event(f"{key}-i", "impression", at, at, "home", key, item,
                                       explore, variant))  # fmt: skip
            if rng.random() < ctr:
                for step, kind in enumerate(("click", "add_to_cart", "purchase")):
                    if step and rng.random() > 0.4:
                        break
                    t = at + timedelta(seconds=5 * (step + 1))
                    events.append(logged_event(f"{key}-{kind}", kind, t, t, "home", key, item,
                                               explore, variant))  # fmt: skip
    return events


@pytest.fixture
def warehouse(engine, sqlite_store):
    """Two hours: exploration CTR 1% against 20% (the alert opens, the switch trips), then
    reset by an operator with a hostile reason, then 20% (the alert resolves)."""
    reset(engine)
    settings = default_settings(warehouse_url=engine.url.render_as_string(hide_password=False))
    for window in range(N_WINDOWS):
        load_events(engine, shop_window(window, 0.01 if window < 4 else 0.2))
        materialise_window(engine, as_of(window), PARAMS, future_scan=FUTURE_SCAN)
        materialise_metrics(engine, as_of(window), PARAMS, "default", experiment=("x", 10.0))
        evaluate_ctr_alerts(engine, "default", as_of(window), settings.alert_thresholds())
        evaluate_killswitch(engine, sqlite_store, "default", as_of(window),
                            settings.killswitch_policy())  # fmt: skip
        if window == 3:
            reset_killswitch(engine, sqlite_store, "default", "home", HOSTILE, "operator",
                             now=as_of(window) + timedelta(minutes=5))  # fmt: skip
    return engine, settings


def truth_file(tmp_path) -> DryRunTruth:
    truth = DryRunTruth(
        seed=7, scenario="steady", namespace="default", start=START, end=as_of(N_WINDOWS - 1),
        surfaces=["home"], fresh_items=[f"fresh-{i}" for i in range(4)],
        true_rewards=[TrueReward(START + timedelta(hours=h), "home", f"fresh-{i}", 0.1 * i, 0.05)
                      for h in range(2) for i in range(4)],
        regret=[RegretWindow(START + w * WINDOW, "home", 150, 2.0 + w, 5.0 + w, 9.0)
                for w in range(N_WINDOWS)],
    )  # fmt: skip
    truth.write(tmp_path / "truth.json")
    return DryRunTruth.read(tmp_path / "truth.json")


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img src="data:image/png;base64,([^"]+)"',
                                                    html)]  # fmt: skip


def test_a_page_from_a_warehouse_holds_every_section_and_decodable_plots(warehouse, tmp_path):
    engine, settings = warehouse
    truth = truth_file(tmp_path)
    report = write_report(engine, settings, START, as_of(N_WINDOWS - 1), tmp_path / "out", truth)
    html = report.html_path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert html.rstrip().endswith("</html>")
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert 'id="verdict"' in html
    assert html.index('id="verdict"') < html.index('id="exploration"')  # at the top
    assert '<table id="success-criteria">' in html
    assert "No data" not in html  # every section had something to show
    # The hostile reset reason is shown, escaped.
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Six plots, embedded and beside the page, the same bytes, each a PNG image.
    pngs = embedded_pngs(html)
    assert len(pngs) == 6
    assert sorted(p.name for p in report.image_paths) == sorted(
        p.name for p in (tmp_path / "out").glob("*.png")
    )
    assert sorted(p.read_bytes() for p in report.image_paths) == sorted(pngs)
    for png in pngs:
        assert png.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
            assert image.format == "PNG"
    # The verdict: the alert resolved but the switch tripped in the range, and two hours
    # are fewer than the default 48.
    assert not report.passed
    failed = {c.key for c in report.criteria if not c.passed}
    assert "killswitch_not_tripped" in failed
    assert "explore_hours" in failed
    assert "no_open_alert" not in failed
    assert "srm" not in failed  # control got 10% of impressions, the recorded holdout
    assert report.verdict_lines()[0].startswith("verdict: FAIL")
    # The dry run's extras: true rewards beside the posteriors, and regret.
    assert "true expected reward" in html
    assert "Thompson sampling" in html


def test_the_report_readout_is_the_view_with_reward_besides(warehouse):
    engine, settings = warehouse
    from bandit_pipeline.report.build import summarise

    data = read_warehouse(engine, "default", START, as_of(N_WINDOWS - 1))
    sections = summarise(data, settings, None)
    mine = {c.metric: c for c in sections.comparisons}
    assert set(mine) == {"ctr", "add_to_cart_rate", "purchase_rate", "reward_per_impression"}
    for row in experiment_readout(engine):  # the whole history is the range here
        ours = mine[row.metric]
        assert (ours.control_impressions, ours.treatment_impressions) == (
            row.control_impressions,
            row.treatment_impressions,
        )
        assert ours.relative_difference == pytest.approx(row.relative_difference)
        assert ours.ci_low == pytest.approx(row.relative_difference_ci_low, rel=1e-6)
        assert ours.ci_high == pytest.approx(row.relative_difference_ci_high, rel=1e-6)
        assert sections.srm["home"][4] == pytest.approx(row.srm_p_value, rel=1e-6)
    # The variance section: explore impressions of the range, reward normalised to [0, 1].
    (summary, outcomes), = sections.variance  # fmt: skip
    assert summary.impressions == 150 * N_WINDOWS
    assert 0 < summary.mean < 1
    assert [o.event_type for o in outcomes] == ["click", "add_to_cart", "purchase"]
    assert all(o.share_of_reward_variance > 0 for o in outcomes)


def test_a_range_without_data_renders_a_clear_page(engine, tmp_path):
    reset(engine)
    settings = default_settings(warehouse_url=engine.url.render_as_string(hide_password=False))
    report = write_report(engine, settings, START, START + timedelta(hours=1), tmp_path)
    html = report.html_path.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert html.count("No data") == 5  # every warehouse section; regret needs a truth file
    assert embedded_pngs(html) == []
    assert report.image_paths == ()
    assert not report.passed
    assert '<table id="success-criteria">' in html


def test_a_second_report_in_the_same_folder_leaves_no_stale_plot(warehouse, tmp_path):
    engine, settings = warehouse
    first = write_report(engine, settings, START, as_of(N_WINDOWS - 1), tmp_path)
    assert first.image_paths
    later = START + timedelta(days=3)
    write_report(engine, settings, later, later + timedelta(hours=1), tmp_path)
    assert list(tmp_path.glob("*.png")) == []


def test_bad_input_names_the_problem(sqlite_engine, tmp_path):
    settings = default_settings()
    with pytest.raises(ReportError, match="must be after --since"):
        write_report(sqlite_engine, settings, START, START, tmp_path)
    with pytest.raises(ReportError, match="cannot read the truth file"):
        load_truth(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ReportError, match="is not JSON"):
        load_truth(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"seed": 1}')
    with pytest.raises(ReportError, match="not a dry run's truth"):
        load_truth(tmp_path / "other.json")
    other = truth_file(tmp_path)
    other.namespace = "shop2"
    with pytest.raises(ReportError, match="namespace 'shop2'"):
        write_report(sqlite_engine, settings, START, as_of(3), tmp_path, other)


# --- The command.


def run(args, url):
    return CliRunner().invoke(main, args, env={"BANDIT_WAREHOUSE_URL": url},
                              catch_exceptions=False)  # fmt: skip


def test_the_command_prints_the_page_and_the_verdict(warehouse, tmp_path):
    engine, _ = warehouse
    url = engine.url.render_as_string(hide_password=False)
    truth_file(tmp_path)
    out = tmp_path / "report"
    result = run(["report", "--since", "2026-11-20T12:00", "--until", "2026-11-20-14:00",
                  "--out", str(out), "--truth", str(tmp_path / "truth.json")],
                 url)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}" in result.output
    assert "verdict: FAIL" in result.output
    assert "failed: kill switch not tripped" in result.output
    assert (out / "report.html").is_file()


def test_the_command_reads_the_warehouse_it_is_given(warehouse, tmp_path):
    engine, _ = warehouse
    url = engine.url.render_as_string(hide_password=False)
    result = run(["report", "--since", "2026-11-20T12:00+00:00", "--until", "2026-11-20T14:00Z",
                  "--out", str(tmp_path), "--warehouse-url", url],
                 f"sqlite:///{tmp_path}/elsewhere.db")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "5 plots" in result.output  # no truth file: no regret plot
    assert not (tmp_path / "elsewhere.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-11-20T14:00", "--until", "2026-11-20T12:00"], "must be after --since"),
        (["--since", "yesterday"], "expected an ISO 8601 time"),
        (["--since", "2026-11-20T12:00", "--truth", "{tmp}/missing.json"],
         "cannot read the truth file"),
    ],
)  # fmt: skip
def test_the_command_refuses_bad_input_clearly(sqlite_engine, tmp_path, args, message):
    url = sqlite_engine.url.render_as_string(hide_password=False)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run(["report", *args, "--out", str(tmp_path / "out")], url)
    assert result.exit_code == 2
    assert message in result.output
