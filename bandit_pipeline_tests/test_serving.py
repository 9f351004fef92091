"""The serving module against real Redis and SQLite stores."""

from __future__ import annotations

import gc
import logging
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from openfeature import api as openfeature_api
from openfeature.hook import Hook

from bandit_pipeline.online_store import (
    Exposure,
    KillSwitchState,
    Snapshot,
    StoreUnavailable,
    open_store,
)
from bandit_pipeline.policy.experiment import CONTROL, assign_variant
from bandit_pipeline.policy.thompson import decision_rng, thompson_top_k
from bandit_pipeline.serving import DecisionRequest, ExplorationService
from bandit_pipeline.serving.exposure_guard import ExposureGuard
from bandit_pipeline.serving.flags import StoreFlagProvider
from bandit_pipeline.serving.metrics import REGISTRY
from bandit_pipeline.settings import load_settings
from bandit_pipeline_tests.helpers import free_port

RANKED = [f"ranked-{i}" for i in range(8)]
POOL = tuple(f"new-{i}" for i in range(20))


def publish(store, version="v1", items=POOL, surface="home"):
    n = len(items)
    store.publish(
        Snapshot("default", surface, version, datetime.now(UTC), None, tuple(items),
                 np.linspace(1, 3, n), np.linspace(3, 1, n))
    )  # fmt: skip


def make_service(store, **overrides):
    settings = load_settings(
        online_store_url="sqlite:///unused.db", snapshot_refresh_seconds=0.05, **overrides
    )
    return ExplorationService(
        settings, store, seed_source=np.random.default_rng(7), background=False
    )


def request(user="u1", request_id="r1", items=RANKED, candidates=None, surface="home"):
    return DecisionRequest("default", surface, user, request_id, list(items), candidates)


def unconfirmed_plus_stored(guard: ExposureGuard, user: str) -> set[str]:
    """What a decision of this process reads as the user's recent exposures: the
    store's answer and the exposures this process has not had confirmed yet."""
    guarded = guard.begin("default", user, datetime.now(UTC))
    try:
        return guarded.recent()
    finally:
        guarded.end()


def decide_with_guard(guard: ExposureGuard, user: str, items: tuple[str, ...]) -> set[str]:
    """A decision's part in the guard: read, claim ``items``, end; what it claimed."""
    guarded = guard.begin("default", user, datetime.now(UTC))
    try:
        guarded.recent()
        return guarded.claim(items)
    finally:
        guarded.end()


def enable(store):
    store.set_flag("default", "bandit_exploration_enabled", "true")
    store.set_flag("default", "bandit_explore_slots", "2")
    publish(store)
    return store


@pytest.fixture
def enabled(store):
    return enable(store)


def test_two_items_injected_at_the_slot_positions(enabled):
    service = make_service(enabled)
    response = service.decide(request())
    explored = [item for item in response.items if item.explore]
    assert [item.slot for item in explored] == [2, 5]
    assert all(item.item_id in POOL for item in explored)
    assert len({item.item_id for item in explored}) == 2
    assert [i.item_id for i in response.items if not i.explore] == RANKED[:6]  # length kept
    trace = response.trace
    assert (trace.explored, trace.reason, trace.snapshot_version) == (True, "explored", "v1")
    assert trace.chosen == [item.item_id for item in explored]
    # The seed and the snapshot replay the decision offline.
    positions = [POOL.index(c) for c in trace.chosen]
    snapshot = enabled.load("default", "home")
    replay, _ = thompson_top_k(snapshot.alpha, snapshot.beta, 2, decision_rng(trace.seed))
    assert replay.tolist() == positions


def test_one_slot_when_the_flag_says_one(enabled):
    enabled.set_flag("default", "bandit_explore_slots", "1")
    response = make_service(enabled).decide(request())
    assert [item.slot for item in response.items if item.explore] == [2]


def test_never_an_item_the_ranker_shows(enabled):
    items = [*list(POOL[:19]), "ranked-0"]
    response = make_service(enabled).decide(request(items=items))
    assert response.trace.chosen == ["new-19"]  # the only pool item not already shown
    assert len({i.item_id for i in response.items}) == len(response.items)


def test_recently_explored_items_are_skipped_for_that_user(enabled):
    service = make_service(enabled)
    seen: set[str] = set()
    for number in range(10):  # 20 pool items, 2 per decision: each shown once per hour
        trace = service.decide(request(request_id=f"r{number}")).trace
        assert not seen.intersection(trace.chosen)
        seen.update(trace.chosen)
    assert seen == set(POOL)
    trace = service.decide(request(request_id="r-last")).trace
    assert (trace.explored, trace.reason) == (False, "no_eligible_candidates")
    # another user is not affected
    assert service.decide(request(user="u2")).trace.explored


def test_the_guard_counts_its_hour_on_the_decision_clock(enabled):
    """A replay or a simulation passes its own time: the hour runs on that clock, not
    on the wall clock, so a user returning 61 simulated minutes later is served again."""
    service = make_service(enabled)
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def decide(minutes: float, number: int):
        at = start + timedelta(minutes=minutes)
        return service.decide(DecisionRequest("default", "home", "u1", f"s{number}",
                                              list(RANKED), None, at)).trace  # fmt: skip

    seen: set[str] = set()
    for number in range(10):
        trace = decide(number, number)
        assert trace.decided_at == start + timedelta(minutes=number)
        seen.update(trace.chosen)
    assert seen == set(POOL)
    service.flush_exposures()
    assert decide(59, 10).reason == "no_eligible_candidates"  # every item within the hour
    again = decide(70, 11)  # the first decisions are more than an hour behind
    assert again.explored
    assert set(again.chosen) <= seen
    naive = service.decide(DecisionRequest("default", "home", "u2", "s12", list(RANKED), None,
                                           datetime(2026, 1, 5, 9, 0))).trace  # fmt: skip
    assert naive.decided_at == start  # naive means UTC


def test_the_trace_replays_the_decision_with_its_exclusions(enabled):
    """Draws over the whole candidate list in order from ``decision_rng(seed)``, with the
    skipped ones (shown by the ranker, explored recently) unable to win, give the same
    choice: a pool decision replays from its trace and the snapshot alone."""
    service = make_service(enabled)
    first = service.decide(request()).trace
    shown = [POOL[3], *RANKED[:5]]
    second = service.decide(request(request_id="r2", items=shown)).trace
    assert sorted(second.skipped_recent) == sorted(first.chosen)
    assert second.skipped_shown == [POOL[3]]
    assert second.eligible == len(POOL) - 3
    snapshot = enabled.load("default", "home")
    excluded = {POOL.index(n) for n in [*second.skipped_recent, *second.skipped_shown]}
    replay, scores = thompson_top_k(
        snapshot.alpha, snapshot.beta, len(second.chosen), decision_rng(second.seed), excluded
    )
    assert [POOL[i] for i in replay] == second.chosen
    assert scores.tolist() == second.scores

    candidates = ["brand-new", POOL[5], POOL[5], "ranked-1", POOL[7]]
    third = service.decide(request(user="u9", candidates=candidates)).trace
    names = ["brand-new", POOL[5], "ranked-1", POOL[7]]  # first occurrences, in order
    alpha = np.array([1.0, snapshot.alpha[5], 1.0, snapshot.alpha[7]])
    beta = np.array([1.0, snapshot.beta[5], 1.0, snapshot.beta[7]])
    assert third.skipped_shown == ["ranked-1"]
    replay, _ = thompson_top_k(alpha, beta, 2, decision_rng(third.seed), {2})
    assert [names[i] for i in replay] == third.chosen


def test_a_choice_made_before_the_answer_is_made_again_when_the_answer_takes_it(enabled):
    """The choice made while the exposure read is on its way stands only if the answer
    names none of its items. Two services with the same seed source make the same draws:
    the second user's recent exposures are exactly the first's choice, so the second
    decision must choose again, and replay with those items excluded."""
    first = make_service(enabled).decide(request(user="u1")).trace
    enabled.write_exposures([Exposure("default", "u2", tuple(first.chosen), datetime.now(UTC))])
    second = make_service(enabled).decide(request(user="u2")).trace
    assert second.seed == first.seed  # the same draws as the first decision
    assert sorted(second.skipped_recent) == sorted(first.chosen)
    assert not set(second.chosen) & set(first.chosen)
    snapshot = enabled.load("default", "home")
    excluded = {POOL.index(n) for n in first.chosen}
    replay, scores = thompson_top_k(
        snapshot.alpha, snapshot.beta, 2, decision_rng(second.seed), excluded
    )
    assert [POOL[i] for i in replay] == second.chosen
    assert scores.tolist() == second.scores


def test_the_next_decision_carries_the_previous_exposure_writes(enabled):
    """No flush and no thread: user 1's exposure reaches Redis with user 2's read; an
    embedded store's reads carry no writes (no decision waits for a write transaction),
    so there the writer thread's flush makes it."""
    service = make_service(enabled)
    first = service.decide(request(user="u1")).trace
    assert enabled.recent_exposures("default", "u1", datetime.now(UTC)) == set()
    service.decide(request(user="u2", request_id="r2"))
    carried = enabled.recent_exposures("default", "u1", datetime.now(UTC))
    assert carried == (set(first.chosen) if enabled.reads_carry_writes else set())
    if not enabled.reads_carry_writes:
        # this process's decisions still count them for user 1 until they are written
        assert unconfirmed_plus_stored(service.exposure_guard, "u1") == set(first.chosen)
        service.flush_exposures()
        assert enabled.recent_exposures("default", "u1", datetime.now(UTC)) == set(first.chosen)
    # ... and another process (a second service) now skips them for user 1.
    other = make_service(enabled).decide(request(user="u1", request_id="r3")).trace
    assert sorted(other.skipped_recent) == sorted(first.chosen)
    if not enabled.reads_carry_writes:
        # once written, this process no longer counts them itself: only the store does
        with closing(sqlite3.connect(enabled.path)) as connection, connection:
            connection.execute("DELETE FROM exposures")
        assert unconfirmed_plus_stored(service.exposure_guard, "u1") == set()


def test_flags_are_evaluated_through_openfeature_once_per_stored_version(enabled):
    class Counting(Hook):
        evaluations = 0

        def before(self, hook_context, hints):
            Counting.evaluations += 1

    service = make_service(enabled)
    service.flag_client.add_hooks([Counting()])
    for number in range(5):
        assert service.decide(request(request_id=f"r{number}", user=f"u{number}")).trace.slots == 2
    assert Counting.evaluations == 3  # one per flag
    enabled.set_flag("default", "bandit_explore_slots", "1")
    service.state.refresh()  # a new read of the stored values: evaluated again
    assert service.decide(request(user="u9")).trace.slots == 1
    assert Counting.evaluations == 6


def test_the_rollout_share_is_stable_per_user_and_near_its_percent(enabled):
    enabled.set_flag("default", "bandit_explore_traffic_percent", "10")
    service = make_service(enabled)
    users = [f"user-{n}" for n in range(2_000)]
    served = {u: service.decide(request(user=u, request_id=f"a-{u}")).trace for u in users}
    inside = [u for u, t in served.items() if t.explored]
    outside = [t for t in served.values() if not t.explored]
    # 2,000 users at 10%: 200 expected, sd about 13; 4.5 sd either side.
    assert 140 <= len(inside) <= 260
    assert {(t.reason, t.detail) for t in outside} == {("outside_rollout", "rollout share 10%")}
    again = [service.decide(request(user=u, request_id=f"b-{u}")).trace for u in users[:300]]
    assert [t.reason != "outside_rollout" for t in again] == [u in inside for u in users[:300]]
    # Independent of the experiment's hash: the holdout splits the rollout share too.
    variants = {assign_variant("bandit_exploration", u, 50.0) for u in inside}
    assert variants == {"treatment", CONTROL}
    enabled.set_flag("default", "bandit_explore_traffic_percent", "abc")
    service.state.refresh()
    trace = service.decide(request(user=inside[0], request_id="c")).trace
    assert (trace.reason, trace.explored) == ("flags_unavailable", False)
    assert "bandit_explore_traffic_percent" in trace.detail


def test_explicit_candidates_without_posterior_use_the_prior(enabled):
    response = make_service(enabled).decide(request(candidates=["brand-new", "ranked-1"]))
    assert response.trace.chosen == ["brand-new"]


def test_flag_off_means_no_exploration(enabled):
    enabled.set_flag("default", "bandit_exploration_enabled", "false")
    response = make_service(enabled).decide(request())
    assert [i.item_id for i in response.items] == RANKED
    assert response.trace.reason == "exploration_disabled"


def test_bad_flag_value_means_no_exploration_and_says_why(enabled):
    enabled.set_flag("default", "bandit_explore_slots", "three")
    trace = make_service(enabled).decide(request()).trace
    assert (trace.explored, trace.reason) == (False, "flags_unavailable")
    assert "bandit_explore_slots" in trace.detail


def test_flags_fall_back_to_settings(store):
    publish(store)
    service = make_service(store, exploration_enabled=True, explore_slots=1)
    assert service.decide(request()).trace.slots == 1


def test_kill_switch_stops_exploration_within_one_refresh(enabled):
    service = make_service(enabled)
    assert service.decide(request()).trace.explored
    now = datetime.now(UTC)
    enabled.set_killswitch("default", "home", KillSwitchState(True, "reward below 0.01", now))
    service.state.refresh()
    trace = service.decide(request(request_id="r2")).trace
    assert (trace.explored, trace.reason, trace.detail) == (
        False,
        "kill_switch",
        "reward below 0.01",
    )
    enabled.set_killswitch("default", "home", KillSwitchState(False, "reset by operator", now))
    service.state.refresh()
    assert service.decide(request(request_id="r3")).trace.explored


def test_control_users_get_no_exploration(enabled):
    service = make_service(
        enabled, experiment_enabled=True, experiment_name="exp", experiment_holdout_percent=50
    )
    users = [f"user-{i}" for i in range(40)]
    for user in users:
        trace = service.decide(request(user=user)).trace
        variant = assign_variant("exp", user, 50)
        assert (trace.experiment, trace.variant) == ("exp", variant)
        assert trace.explored == (variant != CONTROL)
        if variant == CONTROL:
            assert trace.reason == "control_group"


def test_experiment_only_on_its_surfaces(enabled):
    service = make_service(
        enabled, experiment_enabled=True, experiment_holdout_percent=100,
        experiment_surfaces="cart",
    )  # fmt: skip
    assert service.decide(request()).trace.variant is None  # home is outside the experiment


def test_new_snapshot_is_picked_up_by_the_refresh(enabled):
    service = make_service(enabled)
    assert service.decide(request()).trace.snapshot_version == "v1"
    publish(enabled, version="v2", items=("only-one",))
    service.state.refresh()
    trace = service.decide(request(user="u9")).trace
    assert (trace.snapshot_version, trace.chosen) == ("v2", ["only-one"])


def test_no_snapshot_returns_the_ranker_items(store):
    store.set_flag("default", "bandit_exploration_enabled", "true")
    response = make_service(store).decide(request())
    assert [i.item_id for i in response.items] == RANKED
    assert response.trace.reason == "no_snapshot"


def test_every_decision_logs_a_structured_trace(enabled, caplog):
    with caplog.at_level(logging.INFO, logger="bandit_pipeline.decisions"):
        make_service(enabled).decide(request())
    record = caplog.records[-1]
    assert record.explore_slot == [2, 5]
    assert record.bandit_policy_id == "thompson-beta-v3"
    assert record.bandit_snapshot_version == "v1"
    assert isinstance(record.bandit_seed, int)
    assert (record.bandit_experiment, record.bandit_variant) == (None, None)
    assert record.bandit["chosen"]
    assert record.bandit["scores"]


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test alone (TCP and a unix socket), so that it can be
    killed mid-test."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (make test installs it)"
    port = free_port()
    unix_socket = tmp_path / "redis.sock"

    def start():
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
                str(unix_socket),
                "--unixsocketperm",
                "700",
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return process
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    handle = {
        "process": start(),
        "start": start,
        "url": f"redis://127.0.0.1:{port}/0",
        "unix_url": f"unix://{unix_socket}",
    }
    yield handle
    handle["process"].kill()
    handle["process"].wait()


def test_serving_over_a_unix_socket(private_redis):
    store = open_store(private_redis["unix_url"], timeout_seconds=0.2)
    store.set_flag("default", "bandit_exploration_enabled", "true")
    publish(store)
    service = make_service(store)
    first = service.decide(request()).trace
    second = service.decide(request(request_id="r2")).trace
    assert first.explored
    assert second.explored
    assert not set(first.chosen) & set(second.chosen)
    service.flush_exposures()
    assert store.recent_exposures("default", "u1", datetime.now(UTC)) == {
        *first.chosen,
        *second.chosen,
    }


def test_store_killed_mid_traffic_falls_back_and_recovers(private_redis):
    store = open_store(private_redis["url"], timeout_seconds=0.2)
    store.set_flag("default", "bandit_exploration_enabled", "true")
    publish(store)
    service = make_service(store)
    service.state.store_backoff_seconds = 0.2
    assert service.decide(request()).trace.explored

    private_redis["process"].kill()
    private_redis["process"].wait()
    response = service.decide(request(request_id="r2"))
    assert [i.item_id for i in response.items] == RANKED
    assert (response.trace.explored, response.trace.reason) == (False, "store_unavailable")

    # While the breaker is open the store is not even asked.
    trace = service.decide(request(request_id="r2b")).trace
    assert (trace.reason, trace.detail) == (
        "store_unavailable",
        "skipped: the store failed recently",
    )

    private_redis["process"] = private_redis["start"]()  # empty: nothing published yet
    store.set_flag("default", "bandit_exploration_enabled", "true")
    publish(store, version="v2")
    time.sleep(service.state.store_backoff_seconds)  # the breaker closes again
    service.state.refresh()
    trace = service.decide(request(user="u5", request_id="r3")).trace
    assert (trace.explored, trace.snapshot_version) == (True, "v2")


def test_an_emptied_store_leaves_the_last_snapshot_in_service(private_redis, caplog):
    """Redis restarted without persistence comes back empty: exploration goes on with
    the snapshot this process holds (its version in every trace) until the next publish,
    instead of stopping for up to a window."""
    store = open_store(private_redis["url"], timeout_seconds=0.2)
    publish(store, version="v1")
    service = make_service(store, exploration_enabled=True)  # the flag from the settings
    service.state.store_backoff_seconds = 0.1
    assert service.decide(request()).trace.snapshot_version == "v1"

    private_redis["process"].kill()
    private_redis["process"].wait()
    private_redis["process"] = private_redis["start"]()  # empty
    deadline = time.monotonic() + 10
    traces = []
    while time.monotonic() < deadline and len(traces) < 20:
        service.state.refresh()
        traces.append(service.decide(request(user=f"u{len(traces)}")).trace)
        time.sleep(0.05)
    served = [t for t in traces if t.reason != "store_unavailable"]
    assert served, [t.reason for t in traces]
    assert all(t.explored and t.snapshot_version == "v1" for t in served[-5:])
    assert "holds no snapshot of default/home any more" in caplog.text

    publish(store, version="v2")  # the next run's publish takes over
    service.state.refresh()
    assert service.decide(request(user="u-next")).trace.snapshot_version == "v2"


def test_short_responses_use_only_the_slots_they_have(enabled):
    service = make_service(enabled)
    response = service.decide(request(items=RANKED[:3]))
    assert [i.explore for i in response.items] == [False, False, True]
    assert len(response.trace.chosen) == 1
    service.flush_exposures()
    assert enabled.recent_exposures("default", "u1", datetime.now(UTC)) == set(
        response.trace.chosen
    )
    trace = service.decide(request(user="u2", items=RANKED[:2])).trace
    assert (trace.explored, trace.reason) == (False, "response_too_short")


def test_background_threads_refresh_and_record_exposures(enabled):
    settings = load_settings(online_store_url="sqlite:///unused.db", snapshot_refresh_seconds=0.02)
    service = ExplorationService(settings, enabled, background=True)
    try:
        first = service.decide(request()).trace
        for _ in range(200):  # the refresh thread writes the exposure by itself
            if enabled.recent_exposures("default", "u1", datetime.now(UTC)) == set(first.chosen):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the exposure was never written")
        second = service.decide(request(request_id="r2")).trace
        assert not set(first.chosen) & set(second.chosen)

        publish(enabled, version="v2")
        for _ in range(200):  # the refresh thread picks the new version up by itself
            if service.decide(request(user="u3")).trace.snapshot_version == "v2":
                break
            time.sleep(0.01)
        else:
            pytest.fail("the background refresh never loaded v2")
    finally:
        service.close()


def test_decisions_are_appended_to_the_warehouse_when_asked(engine, sqlite_store):
    import json

    from bandit_pipeline_tests.helpers import rows

    sqlite_store.set_flag("default", "bandit_exploration_enabled", "true")
    publish(sqlite_store)
    url = engine.url.render_as_string(hide_password=False)
    settings = load_settings(warehouse_url=url, decisions_table=True)
    service = ExplorationService(settings, sqlite_store, background=False)
    explored = service.decide(request(items=[POOL[4], *RANKED])).trace
    service.decide(request(user="u2", items=RANKED[:1]))  # too short: not explored
    service.decisions.flush()
    stored = rows(
        engine,
        "SELECT user_id, explored, reason, seed, chosen, snapshot_version, skipped_shown"
        " FROM bandit_decisions ORDER BY decision_id",
    )
    assert [(r[0], bool(r[1]), r[2]) for r in stored] == [
        ("u1", True, "explored"),
        ("u2", False, "response_too_short"),
    ]
    assert stored[0][3] == explored.seed
    assert json.loads(stored[0][4]) == explored.chosen
    assert stored[0][5] == "v1"
    assert [json.loads(r[6]) for r in stored] == [[POOL[4]], []]
    service.close()


def test_each_exposure_stays_unconfirmed_until_its_own_write_is_settled(sqlite_store):
    """Two writes of one user in flight at once: an item of the first cannot be claimed
    again meanwhile, the first confirmation does not hide the second, still unconfirmed,
    write, and a failed write is dropped and counted."""
    guard = ExposureGuard(sqlite_store)
    assert decide_with_guard(guard, "u1", ("a",)) == set()
    first = guard.take()
    assert decide_with_guard(guard, "u1", ("a", "b")) == {"a"}  # in flight: taken
    assert decide_with_guard(guard, "u1", ("b",)) == set()
    second = guard.take()
    assert guard.take() == []
    guard.settle(first)
    assert unconfirmed_plus_stored(guard, "u1") == {"b"}  # nothing was written to the store
    dropped = REGISTRY.get_sample_value("bandit_exposure_writes_dropped_total")
    guard.settle(second, StoreUnavailable("down"))
    assert unconfirmed_plus_stored(guard, "u1") == set()
    assert REGISTRY.get_sample_value("bandit_exposure_writes_dropped_total") == dropped + 1


def test_a_closed_service_releases_its_flag_provider(enabled):
    """OpenFeature keeps providers per domain for the life of the process; a closed
    service's provider (which reads the service's state) is unbound from its domain."""
    service = make_service(enabled)
    domain = service.flag_client.domain
    ours = openfeature_api.provider_registry.get_provider(domain)
    assert isinstance(ours, StoreFlagProvider)
    service.close()
    assert openfeature_api.provider_registry.get_provider(domain) is not ours


def test_threads_that_end_give_their_exchange_connection_back(private_redis):
    """Each deciding thread has a connection of its own while it lives; when it ends the
    connection goes back to a pool of the exchanges' own, so thread churn neither grows
    the connections nor starves the client's pool (refresh, exposure writer, health)."""
    store = open_store(private_redis["url"], timeout_seconds=0.5)
    store.set_flag("default", "bandit_exploration_enabled", "true")
    publish(store)
    service = make_service(store)
    traces = []
    for number in range(150):  # one short-lived thread after another
        thread = threading.Thread(
            target=lambda n=number: traces.append(service.decide(request(user=f"u{n}")).trace)
        )
        thread.start()
        thread.join()
    gc.collect()
    assert len(traces) == 150
    assert all(trace.explored for trace in traces)
    assert len(store.client.client_list()) < 10
    store.ping()
    service.state.refresh()
    assert service.state.last_error is None
    service.close()


def test_a_connection_the_server_dropped_is_replaced_without_failing(private_redis):
    store = open_store(private_redis["url"], timeout_seconds=0.5)
    store.set_flag("default", "bandit_exploration_enabled", "true")
    publish(store)
    service = make_service(store)
    assert service.decide(request(user="u1")).trace.explored
    store.client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    trace = service.decide(request(user="u2", request_id="r2")).trace
    assert (trace.explored, trace.reason) == (True, "explored")
    assert not service.state.store_down()
    service.close()


def test_bad_data_under_one_users_key_fails_only_that_users_decision(redis_store):
    store = redis_store
    store.set_flag("default", "bandit_exploration_enabled", "true")
    publish(store)
    store.client.set(store.exposure_key("default", "broken"), "not a sorted set")
    service = make_service(store)
    trace = service.decide(request(user="broken")).trace
    assert (trace.explored, trace.reason) == (False, "store_error")
    assert "WRONGTYPE" in trace.detail
    assert not service.state.store_down()  # no breaker: the store is fine
    assert service.decide(request(user="u2", request_id="r2")).trace.explored


def test_a_write_the_store_refuses_is_dropped_and_the_others_made(redis_store):
    """Piggybacked and flushed writes alike: the refused one is counted, the rest land,
    nothing stays unconfirmed, and the writer thread lives on."""
    store = redis_store
    guard = ExposureGuard(store, flush_seconds=0.01)
    dropped = REGISTRY.get_sample_value("bandit_exposure_writes_dropped_total")
    now = datetime.now(UTC)
    # Two decisions in flight at once: each read goes out before either claims, so
    # neither carries the other's write, and both are left to the writer thread.
    decisions = [guard.begin("default", user, now) for user in ("broken", "u1")]
    for guarded, item in zip(decisions, ("a", "b"), strict=True):
        assert guarded.recent() == set()
        assert guarded.claim((item,)) == set()
        guarded.end()
    broken_key = store.exposure_key("default", "broken")
    store.client.set(broken_key, "not a sorted set")
    guard.start()
    for _ in range(200):
        written = store.recent_exposures("default", "u1", now) == {"b"}
        refused = REGISTRY.get_sample_value("bandit_exposure_writes_dropped_total") > dropped
        if written and refused:
            break
        time.sleep(0.01)
    assert store.recent_exposures("default", "u1", now) == {"b"}
    assert REGISTRY.get_sample_value("bandit_exposure_writes_dropped_total") == dropped + 1
    store.client.delete(broken_key)
    assert unconfirmed_plus_stored(guard, "broken") == set()  # dropped, not left unconfirmed
    assert decide_with_guard(guard, "u2", ("c",)) == set()
    for _ in range(200):  # the thread survived the refusal
        if store.recent_exposures("default", "u2", now) == {"c"}:
            break
        time.sleep(0.01)
    else:
        pytest.fail("the writer thread stopped")
    guard.close()


def test_writes_carried_by_a_failed_exchange_are_never_left_unconfirmed(redis_store, monkeypatch):
    """After a store outage they go back to the queue and are written later; after any
    other failure they are dropped and counted. (Redis: SQLite's reads carry no writes.)"""
    enabled = enable(redis_store)
    service = make_service(enabled)
    first = service.decide(request(user="u1")).trace
    real_exchange = enabled.exchange_exposures

    def down(*args):
        raise StoreUnavailable("down")

    monkeypatch.setattr(enabled, "exchange_exposures", down)
    dropped = REGISTRY.get_sample_value("bandit_exposure_writes_dropped_total")
    trace = service.decide(request(user="u2", request_id="r2")).trace
    assert trace.reason == "store_unavailable"
    # queued again, not dropped (the next decision carries it, below)
    assert REGISTRY.get_sample_value("bandit_exposure_writes_dropped_total") == dropped
    monkeypatch.setattr(enabled, "exchange_exposures", real_exchange)
    service.state.store_backoff_seconds = 0
    service.state.mark_store_down(StoreUnavailable("reset"))  # and close the breaker
    assert service.decide(request(user="u3", request_id="r3")).trace.explored
    assert enabled.recent_exposures("default", "u1", datetime.now(UTC)) == set(first.chosen)

    def broken(*args):
        raise ValueError("a bug")

    monkeypatch.setattr(enabled, "exchange_exposures", broken)
    dropped = REGISTRY.get_sample_value("bandit_exposure_writes_dropped_total")
    with pytest.raises(ValueError, match="a bug"):
        service.decide(request(user="u4", request_id="r4"))
    assert REGISTRY.get_sample_value("bandit_exposure_writes_dropped_total") == dropped + 1
    monkeypatch.setattr(enabled, "exchange_exposures", real_exchange)
    assert unconfirmed_plus_stored(service.exposure_guard, "u3") == set()  # not left behind


def test_threads_deciding_for_one_user_at_once_never_pick_the_same_item(enabled):
    """Concurrent decisions of one process for the same user: an item one of them has
    just taken counts as recently explored for the others, which choose again; every
    trace still replays."""
    service = make_service(enabled)
    snapshot = enabled.load("default", "home")
    traces: list = []
    for round_ in range(40):
        barrier = threading.Barrier(4)

        def decide(n, user=f"user-{round_}", barrier=barrier):
            barrier.wait()
            traces.append(service.decide(request(user=user, request_id=f"r{n}")).trace)

        threads = [threading.Thread(target=decide, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(traces) == 160
    for round_ in range(40):
        chosen = [c for t in traces if t.user_id == f"user-{round_}" for c in t.chosen]
        assert len(chosen) == len(set(chosen)) == 8
    for trace in traces:
        excluded = {POOL.index(n) for n in trace.skipped_recent}
        replay, _ = thompson_top_k(
            snapshot.alpha, snapshot.beta, len(trace.chosen), decision_rng(trace.seed), excluded
        )
        assert [POOL[i] for i in replay] == trace.chosen


HOSTILE_IDS = [
    "a}", "{x}", "}{", "u|default", "'; DROP TABLE bandit_rewards; --", '"quoted"',
    "*3\\r\\n$3\\r\\nSET", "$-1", "ключ-😀", "x" * 256, "a b", "default:u1",
]  # fmt: skip


@pytest.mark.parametrize("user", HOSTILE_IDS)
def test_hostile_user_ids_keep_their_own_exposures(redis_store, user):
    """Ids that look like SQL, Redis protocol or Cluster hash tags are keys' data only:
    each user's exposures stay theirs, in any namespace."""
    enable(redis_store)
    publish(redis_store, items=POOL[:4])
    service = make_service(redis_store)
    first = service.decide(request(user=user, request_id="h1")).trace
    second = service.decide(request(user=user, request_id="h2")).trace
    assert first.explored
    assert second.explored
    assert set(first.chosen).isdisjoint(second.chosen)  # the guard read this user back
    service.flush_exposures()
    assert redis_store.recent_exposures("default", user, datetime.now(UTC)) == set(POOL[:4])
    for neighbour in (user + "x", "u1", user.strip("{}") or "y"):
        if neighbour != user:
            assert redis_store.recent_exposures("default", neighbour, datetime.now(UTC)) == set()
    assert redis_store.recent_exposures("other", user, datetime.now(UTC)) == set()
