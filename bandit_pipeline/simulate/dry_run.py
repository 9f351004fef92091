"""The staging dry run: the synthetic shop driving the real serving, ingestion and job in
simulated time, one 15-minute window after another.

Per window: the shop's requests go through :class:`ExplorationService` (in process, the
decision time given explicitly) on the snapshot the previous window published; the
events that arrive in the window (impressions, outcomes drawn from the hidden rates,
late arrivals, re-sent duplicates and a few malformed rows) are written as JSON Lines and
loaded by the real ingestion, each with its simulated arrival as ``ingested_at``; then
the project's Dagster job runs on the window and publishes the next snapshot, and the
alert and kill-switch sensors tick. Every few windows the decisions' propensities are
recorded, as a deployment's hourly ``bandit-pipeline propensities update`` would. The
hidden truth and the regret go to :class:`DryRunTruth`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
from sqlalchemy import Engine

from bandit_pipeline.evaluation.propensities import update_propensities
from bandit_pipeline.ingest import ingest_events, load_catalog
from bandit_pipeline.settings import Settings
from bandit_pipeline.simulate.prior_regret import simulate_prior_regret
from bandit_pipeline.simulate.shop import Request, Shop, ShopOptions
from bandit_pipeline.simulate.traffic import write_jsonl
from bandit_pipeline.simulate.truth import DryRunTruth, RegretWindow, TrueReward
from bandit_pipeline.timing import PARTITION_FORMAT, WINDOW

GRADUATION_OFF = 1e9  # decayed impressions no dry run reaches
# Record the decisions' propensities every few windows, well inside the two hours for
# which the job keeps the pools they need (docs/data-science.md).
PROPENSITIES_EVERY = 4
# Each malformed line names its event: the rejected table keeps each distinct raw row once.
MALFORMED = (
    b"this line is not JSON: %s",
    b'{"event_id": "%s", "event_type": "hover"}',
    b'{"event_id": "%s", "event_type": "click", "occurred_at": "yesterday"}',
)


@dataclass
class DryRunResult:
    truth: DryRunTruth
    windows: int
    requests: int
    explored: int
    reasons: dict[str, int] = field(default_factory=dict)
    ingested: int = 0
    duplicates_ignored: int = 0
    rejected: int = 0
    emitted_ids: set[str] = field(default_factory=set)  # valid events, each once


def dry_run_settings(settings: Settings, options: ShopOptions, start: datetime) -> Settings:
    """The settings the loop runs with: partitions from ``start`` and decisions recorded.

    Items do not graduate out of the pool during a dry run: in production a graduated
    item moves to the ranker, but the shop's stand-in ranker knows only its established
    items, so graduation would leave exploration with the items it learned to avoid."""
    return settings.model_copy(
        update={
            "partitions_start": start.strftime(PARTITION_FORMAT),
            "decisions_table": True,
            "pool_graduation_impressions": max(
                settings.pool_graduation_impressions, GRADUATION_OFF
            ),
        }
    )


def run_dry_run(
    engine: Engine,
    settings: Settings,
    options: ShopOptions,
    start: datetime,
    folder: Path,
    *,
    checks_every: int = 4,
    on_window: Callable[[int], object] = lambda n: None,
) -> DryRunResult:
    """Simulate ``options.days`` from ``start`` (a window boundary, UTC) on the stores of
    ``settings``; events and the truth file are written under ``folder``. The job's
    quality checks run on every ``checks_every``-th window (1: all of them)."""
    import dagster as dg

    from bandit_pipeline.local_runs import WindowRunner
    from bandit_pipeline.online_store import open_store
    from bandit_pipeline.serving import DecisionRequest, ExplorationService

    shop = Shop(options, start, settings.reward_weights)
    windows = round(options.days * 24 * 60 / (WINDOW / timedelta(minutes=1)))
    end = start + windows * WINDOW
    truth = DryRunTruth(
        seed=options.seed,
        scenario=options.scenario,
        namespace=settings.namespace,
        start=start,
        end=end,
        surfaces=list(settings.surfaces),
        fresh_items=[item.item_id for item in shop.fresh_items],
        prior_regret=simulate_prior_regret(
            options,
            start,
            settings.posterior_parameters(),
            settings.prior_fit_parameters(),
            # The dry run keeps items in the pool; graduated items had the default's history.
            Settings.model_fields["pool_graduation_impressions"].default,
        ),
    )
    folder.mkdir(parents=True, exist_ok=True)
    catalog_path = folder / "catalog.jsonl"
    write_jsonl(catalog_path, shop.catalog_rows(settings.namespace))
    load_catalog(engine, str(catalog_path), settings)

    noise = random.Random(options.seed + 1)
    arrivals: dict[int, list[bytes]] = defaultdict(list)
    counters: dict[str, int] = defaultdict(int, windows=windows)
    result = DryRunResult(truth, windows, 0, 0)
    store = open_store(settings.online_store_url, prefix=settings.online_store_prefix)
    service = ExplorationService(
        settings, store, seed_source=np.random.default_rng(options.seed), background=False
    )
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            runner = WindowRunner(settings, instance)
            for n in range(windows):
                window_start = start + n * WINDOW
                if window_start.minute == 0:
                    _record_truth(truth, shop, settings.surfaces, window_start)
                service.state.refresh()
                regret = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
                for request in shop.requests(window_start, WINDOW):
                    response = service.decide(
                        DecisionRequest(
                            settings.namespace,
                            request.surface,
                            request.user_id,
                            request.request_id,
                            request.ranked,
                            decided_at=request.at,
                        )
                    )
                    trace = response.trace
                    result.requests += 1
                    result.reasons[trace.reason] = result.reasons.get(trace.reason, 0) + 1
                    if trace.explored:
                        result.explored += 1
                        _add_regret(regret[request.surface], shop, service, request, trace)
                    for item in response.items:
                        _emit_impression(
                            shop, settings.namespace, request, item, trace, start, arrivals,
                            noise, counters, options, result.emitted_ids,
                        )  # fmt: skip
                service.flush_exposures()
                if service.decisions is not None:
                    service.decisions.flush()
                for surface, (slots, ts, uniform, none) in sorted(regret.items()):
                    truth.regret.append(
                        RegretWindow(window_start, surface, slots, ts, uniform, none)
                    )
                lines = arrivals.pop(n, [])
                if lines:
                    # One file per window: rejected rows are keyed by file and line.
                    path = folder / f"events-{window_start:%Y%m%dT%H%M}.jsonl"
                    path.write_bytes(b"\n".join(lines) + b"\n")
                    report = ingest_events(engine, str(path), settings, historical=True)
                    path.unlink()
                    result.ingested += report.inserted
                    result.duplicates_ignored += report.duplicate
                    result.rejected += report.rejected
                runner.run(window_start.strftime(PARTITION_FORMAT), checks=n % checks_every == 0)
                runner.evaluate_sensors()
                if n % PROPENSITIES_EVERY == PROPENSITIES_EVERY - 1 or n == windows - 1:
                    update_propensities(engine)
                on_window(1)
    finally:
        service.close()
    counters.pop("windows")
    truth.emitted = dict(counters)
    truth.write(folder / "truth.json")
    return result


def _record_truth(truth: DryRunTruth, shop: Shop, surfaces: list[str], at: datetime) -> None:
    for item in shop.fresh_items:
        for surface in surfaces:
            truth.true_rewards.append(
                TrueReward(
                    at,
                    surface,
                    item.item_id,
                    shop.expected_reward(item.item_id, surface, at),
                    shop.click_rate(item.item_id, surface, at),
                )
            )


def _add_regret(totals: list, shop: Shop, service, request: Request, trace) -> None:
    """The window's regret on the decision's explore slots: the best eligible candidates'
    true rewards minus those of the chosen items, of a uniform choice (expected), and of
    the ranker's items that would have stayed in the slots."""
    snapshot, _ = service.state.surface(trace.namespace, trace.surface)
    skipped = {*trace.skipped_shown, *trace.skipped_recent}
    eligible = [i for i in snapshot.snapshot.item_ids if i not in skipped]
    rewards = sorted((shop.expected_reward(i, request.surface, request.at) for i in eligible),
                     reverse=True)  # fmt: skip
    k = len(trace.chosen)
    best = sum(rewards[:k])
    chosen = sum(shop.expected_reward(i, request.surface, request.at) for i in trace.chosen)
    displaced = [request.ranked[p] for p in trace.explore_slots if p < len(request.ranked)]
    kept = sum(shop.expected_reward(i, request.surface, request.at) for i in displaced)
    totals[0] += k
    totals[1] += best - chosen
    totals[2] += best - k * (sum(rewards) / len(rewards))
    totals[3] += best - kept


def _emit_impression(
    shop: Shop,
    namespace: str,
    request: Request,
    item,
    trace,
    start: datetime,
    arrivals: dict[int, list[bytes]],
    noise: random.Random,
    counters: dict[str, int],
    options: ShopOptions,
    emitted: set[str],
) -> None:
    """Queue the impression of one response item and its outcomes by arrival window."""
    base = {
        "namespace": namespace,
        "surface": request.surface,
        "user_id": request.user_id,
        "request_id": request.request_id,
        "item_id": item.item_id,
        "slot": item.slot,
        "explore": item.explore,
    }
    if item.explore:
        base["bandit_policy_id"] = trace.policy_id
    if trace.experiment is not None:
        base["experiment"], base["variant"] = trace.experiment, trace.variant
    events = [("impression", request.at)]
    events += [
        (o.event_type, o.occurred_at)
        for o in shop.outcomes(item.item_id, request.surface, request.at)
    ]
    for event_type, occurred in events:
        event_id = f"{request.request_id}-{item.slot}-{event_type}"
        arrived = shop.arrival(occurred)
        row = {**base, "event_id": event_id, "event_type": event_type,
               "occurred_at": occurred.isoformat(), "ingested_at": arrived.isoformat()}  # fmt: skip
        if not _queue(arrivals, start, arrived, orjson.dumps(row), counters, "valid"):
            continue  # arrives after the run ends
        emitted.add(event_id)
        if arrived - occurred > timedelta(minutes=15):
            counters["late"] += 1
        if noise.random() < options.duplicate_share:
            # Re-sent later: ingestion keeps the first copy.
            resent = arrived + timedelta(minutes=noise.uniform(1, 40))
            again = orjson.dumps({**row, "ingested_at": resent.isoformat()})
            _queue(arrivals, start, resent, again, counters, "duplicates")
        if noise.random() < options.malformed_share:
            bad = MALFORMED[noise.randrange(len(MALFORMED))]
            if b"%s" in bad:
                bad = bad % f"bad-{event_id}".encode()
            _queue(arrivals, start, arrived, bad, counters, "malformed")


def _queue(
    arrivals: dict[int, list[bytes]],
    start: datetime,
    arrived: datetime,
    line: bytes,
    counters: dict[str, int],
    kind: str,
) -> bool:
    """Queue ``line`` for the window it arrives in; False when that is after the run."""
    window = int((arrived - start) / WINDOW)
    if window >= counters["windows"]:
        return False
    arrivals[window].append(line)
    counters[kind] += 1
    return True
