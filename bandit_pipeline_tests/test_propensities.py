"""Propensities of Thompson sampling's choices: the quadrature against closed forms and
Monte Carlo, and the warehouse record of the served decisions' propensities (both
warehouses, decisions made by the real serving path on the embedded store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, text

from bandit_pipeline.evaluation.propensities import (
    OK,
    REPLAY_MISMATCH,
    SNAPSHOT_MISSING,
    update_propensities,
)
from bandit_pipeline.online_store import open_store
from bandit_pipeline.policy.propensity import (
    SnapshotPropensities,
    monte_carlo_slot_probabilities,
    replay_choice,
    thompson_slot_propensities,
)
from bandit_pipeline.policy.thompson import decision_rng, thompson_top_k
from bandit_pipeline.pool import publish_pools
from bandit_pipeline.serving import DecisionRequest, ExplorationService
from bandit_pipeline.settings import Settings, load_settings
from bandit_pipeline_tests.helpers import rows, scalar

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RANKED = [f"ranked-{i}" for i in range(8)]


# --- The math --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 7, 40])
def test_identical_candidates_take_each_slot_with_probability_one_over_n(n):
    for target in (0, n - 1):
        result = thompson_slot_propensities(np.full(n, 2.0), np.full(n, 30.0), target, 2)
        assert result.probabilities == pytest.approx((1 / n, 1 / n), rel=1e-9)


def test_a_uniform_against_a_beta_2_1_wins_one_time_in_three():
    # P(U > Y) for Y ~ Beta(2, 1), F_Y(x) = x^2: the integral of x^2 over [0, 1].
    result = thompson_slot_propensities(np.array([1.0, 2.0]), np.array([1.0, 1.0]), 0, 2)
    assert result.probabilities == pytest.approx((1 / 3, 2 / 3), rel=1e-9)
    assert max(result.error_bounds) < 1e-9


def test_quadrature_agrees_with_monte_carlo_and_each_slot_sums_to_one():
    rng = np.random.default_rng(11)
    alpha, beta = rng.uniform(1, 40, 12), rng.uniform(20, 300, 12)
    exact = np.array(
        [thompson_slot_propensities(alpha, beta, i, 2).probabilities for i in range(12)]
    )
    draws = 400_000
    mc = monte_carlo_slot_probabilities(alpha, beta, 2, np.random.default_rng(3), draws)
    assert exact.sum(axis=0) == pytest.approx([1.0, 1.0], abs=1e-5)
    standard_error = np.sqrt(np.maximum(exact * (1 - exact), 1e-12) / draws)
    assert np.all(np.abs(exact - mc) <= 5 * standard_error + 1e-6), (exact, mc)
    assert exact[:, 0].max() < 0.9  # a real contest, not one certain winner


def test_the_error_bound_holds_against_a_tighter_computation(monkeypatch):
    import bandit_pipeline.policy.propensity as propensity

    rng = np.random.default_rng(5)
    alpha, beta = rng.uniform(1, 80, 9), rng.uniform(5, 600, 9)
    loose = [thompson_slot_propensities(alpha, beta, i, 2) for i in range(9)]
    floor = propensity.ABSOLUTE_TOLERANCE  # below it the bound promises nothing
    monkeypatch.setattr(propensity, "RELATIVE_TOLERANCE", 1e-11)
    monkeypatch.setattr(propensity, "ABSOLUTE_TOLERANCE", 1e-17)
    for i, result in enumerate(loose):
        tight = thompson_slot_propensities(alpha, beta, i, 2).probabilities
        for value, bound, reference in zip(
            result.probabilities, result.error_bounds, tight, strict=True
        ):
            assert abs(value - reference) <= bound + floor
            assert bound <= max(1e-5 * reference, 1e-12) * 1.01


def test_a_snapshot_shares_its_work_and_gives_each_decision_its_own_propensities():
    """Decisions on one snapshot that exclude different candidates get what a computation
    over their own eligible candidates gives, within the two error bounds."""
    rng = np.random.default_rng(8)
    alpha, beta = 1 + rng.gamma(1, 20, 40), 1 + rng.gamma(1, 300, 40)
    shared = SnapshotPropensities(alpha, beta)
    for _ in range(40):
        excluded = set(rng.choice(40, size=int(rng.integers(0, 6)), replace=False).tolist())
        eligible = [i for i in range(40) if i not in excluded]
        target = int(rng.choice(eligible))
        result = shared.slot_propensities(target, excluded, 2)
        alone = thompson_slot_propensities(
            alpha[eligible], beta[eligible], eligible.index(target), 2
        )
        for value, bound, reference, other in zip(
            result.probabilities,
            result.error_bounds,
            alone.probabilities,
            alone.error_bounds,
            strict=True,
        ):
            assert abs(value - reference) <= bound + other + 1e-15
    assert shared.from_scratch < 10  # the kept panels serve most decisions


@pytest.mark.parametrize("policy_id", ["thompson-beta-v1", "thompson-beta-v2", "thompson-beta-v3"])
def test_replay_follows_the_rule_of_each_policy_id(policy_id):
    alpha, beta = np.linspace(1, 5, 10), np.linspace(5, 1, 10)
    chosen, scores = replay_choice(policy_id, alpha, beta, 1234, 2, {9})
    assert 9 not in chosen
    assert len(chosen) == 2
    assert scores[0] >= scores[1]
    if policy_id == "thompson-beta-v3":
        expected, _ = thompson_top_k(alpha, beta, 2, decision_rng(1234), {9})
        assert chosen == expected.tolist()


# --- The warehouse record ----------------------------------------------------------------


def _pool(engine: Engine, surface: str, as_of: datetime, alpha, beta) -> None:
    with engine.begin() as connection:
        for i, (a, b) in enumerate(zip(alpha, beta, strict=True)):
            connection.execute(
                text(
                    "INSERT INTO bandit_candidate_pool (as_of, namespace, surface, item_id, "
                    "alpha, beta, evidence) VALUES (:as_of, 'default', :surface, :item, :a, "
                    ":b, :e)"
                ).bindparams(),
                {"as_of": _stamp(engine, as_of), "surface": surface, "item": f"new-{i:02d}",
                 "a": a, "b": b, "e": a + b - 2},
            )  # fmt: skip


def _stamp(engine: Engine, moment: datetime):
    from bandit_pipeline_tests.helpers import stamp

    return stamp(engine, moment)


@pytest.fixture
def served(engine: Engine, settings: Settings, tmp_path, request):
    """A published pool of 8 candidates with distinct posteriors, and a serving service
    with 2 exploration slots (or the test's parameter) recording its decisions into the
    warehouse."""
    alpha = np.array([2.0, 3.0, 5.0, 1.5, 8.0, 2.5, 4.0, 1.2])
    beta = np.array([30.0, 25.0, 40.0, 20.0, 45.0, 60.0, 22.0, 9.0])
    _pool(engine, "home", AS_OF, alpha, beta)
    store = open_store(f"sqlite:///{tmp_path}/online_store.db")
    publish_pools(engine, store, AS_OF, "default", ("home",))
    service_settings = load_settings(
        warehouse_url=settings.warehouse_url,
        online_store_url=f"sqlite:///{tmp_path}/online_store.db",
        exploration_enabled=True,
        explore_slots=getattr(request, "param", 2),
        decisions_table=True,
    )
    service = ExplorationService(
        service_settings, store, seed_source=np.random.default_rng(1), background=False
    )
    yield service, alpha, beta
    service.close()


def _decide(service: ExplorationService, n: int, start: int = 0, **request) -> list:
    traces = []
    for i in range(start, start + n):
        response = service.decide(
            DecisionRequest(
                "default", "home", f"user-{i}", f"req-{i}", RANKED,
                decided_at=AS_OF + timedelta(seconds=i), **request,
            )
        )  # fmt: skip
        traces.append(response.trace)
    service.decisions.flush()
    return traces


def test_recorded_propensities_are_the_serving_frequencies(engine, served):
    service, alpha, beta = served
    traces = _decide(service, 600)
    report = update_propensities(engine, batch=250)
    assert report.statuses == {OK: 600}
    assert report.snapshots_copied == 1
    recorded = rows(
        engine,
        "SELECT d.request_id, p.rank, p.slot, p.item_id, p.propensity, p.error_bound, p.status "
        "FROM bandit_decision_propensities AS p JOIN bandit_decisions AS d "
        "ON d.decision_id = p.decision_id ORDER BY d.decision_id, p.rank",
    )
    assert len(recorded) == 1200
    assert {(r.rank, r.slot) for r in recorded} == {(0, 2), (1, 5)}
    by_request = {(r.request_id, r.rank): r for r in recorded}
    for trace in traces:
        for rank, item in enumerate(trace.chosen):
            assert by_request[trace.request_id, rank].item_id == item
    # Every decision saw the same 8 candidates: the propensity of an item in a slot is
    # one number, and its frequency over 600 decisions is that number.
    exact = np.array([thompson_slot_propensities(alpha, beta, i, 2).probabilities
                      for i in range(8)])  # fmt: skip
    for r in recorded:
        i = int(r.item_id.removeprefix("new-"))
        assert r.propensity == pytest.approx(exact[i, r.rank], rel=1e-12)
        assert 0 <= r.error_bound <= 1e-5 * r.propensity + 1e-12
    for rank in (0, 1):
        counts = np.bincount(
            [int(r.item_id.removeprefix("new-")) for r in recorded if r.rank == rank],
            minlength=8,
        )
        expected = 600 * exact[:, rank]
        chi_square = np.sum((counts - expected) ** 2 / expected)
        assert chi_square < 24.3, (counts, expected)  # 7 degrees of freedom, p = 0.001


@pytest.mark.parametrize("served", [1], indirect=True)
def test_one_slot_decisions_record_the_first_slot_propensity(engine, served):
    service, alpha, beta = served
    traces = _decide(service, 40)
    assert {len(trace.chosen) for trace in traces} == {1}
    assert update_propensities(engine).statuses == {OK: 40}
    recorded = rows(
        engine, "SELECT rank, slot, item_id, propensity FROM bandit_decision_propensities"
    )
    assert len(recorded) == 40
    for r in recorded:
        i = int(r.item_id.removeprefix("new-"))
        expected = thompson_slot_propensities(alpha, beta, i, 1).probabilities[0]
        assert (r.rank, r.slot) == (0, 2)
        assert r.propensity == pytest.approx(expected, rel=1e-12)


def test_the_update_is_incremental_and_copies_each_snapshot_once(engine, served):
    service, *_ = served
    _decide(service, 20)
    assert update_propensities(engine).decisions == 20
    assert update_propensities(engine).decisions == 0
    _decide(service, 5, start=20)
    again = update_propensities(engine)
    assert again.decisions == 5
    assert again.snapshots_copied == 0
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_decision_snapshots") == 8
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_decision_propensities") == 50


def test_a_user_recent_exclusions_leave_the_eligible_candidates(engine, served):
    service, alpha, beta = served
    # The same user three times within the hour: later decisions exclude earlier choices.
    traces = [_decide(service, 1, start=0)[0]]
    for i in (1, 2):
        response = service.decide(
            DecisionRequest("default", "home", "user-0", f"again-{i}", RANKED,
                            decided_at=AS_OF + timedelta(minutes=i))
        )  # fmt: skip
        traces.append(response.trace)
    service.flush_exposures()
    service.decisions.flush()
    assert traces[2].skipped_recent
    update_propensities(engine)
    last = rows(
        engine,
        "SELECT p.rank, p.item_id, p.propensity, p.eligible FROM bandit_decision_propensities "
        "AS p JOIN bandit_decisions AS d ON d.decision_id = p.decision_id "
        "WHERE d.request_id = 'again-2' ORDER BY p.rank",
    )
    excluded = {int(item.removeprefix("new-")) for item in traces[2].skipped_recent}
    eligible = [i for i in range(8) if i not in excluded]
    assert last[0].eligible == len(eligible)
    for r in last:
        i = eligible.index(int(r.item_id.removeprefix("new-")))
        expected = thompson_slot_propensities(alpha[eligible], beta[eligible], i, 2)
        assert r.propensity == pytest.approx(expected.probabilities[r.rank], rel=1e-12)


def test_decisions_that_cannot_be_replayed_are_marked_and_not_retried(engine, served):
    service, *_ = served
    # Explicit candidates: the trace does not carry them, so the pool's replay disagrees.
    _decide(service, 3, candidates=["new-07", "new-03", "other-1"])
    report = update_propensities(engine)
    assert report.statuses == {REPLAY_MISMATCH: 3}
    # A pool pruned before any decision of it was recorded: nothing to replay against.
    later = AS_OF + timedelta(minutes=15)
    _pool(engine, "home", later, np.full(8, 2.0), np.full(8, 20.0))
    publish_pools(engine, service.store, later, "default", ("home",))
    service.state.refresh()
    _decide(service, 2, start=100)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM bandit_candidate_pool"))
    report = update_propensities(engine)
    assert report.statuses == {SNAPSHOT_MISSING: 2}
    assert update_propensities(engine).decisions == 0
    statuses = rows(engine, "SELECT status, propensity FROM bandit_decision_propensities")
    assert all(r.propensity is None for r in statuses)


def test_the_hourly_dagster_job_records_what_the_command_would(engine, served, settings):
    import dagster as dg

    from bandit_pipeline.definitions import build_definitions
    from bandit_pipeline_tests.helpers import warehouse_resource

    service, *_ = served
    _decide(service, 12)
    settings = settings.model_copy(update={"partitions_start": "2026-11-20-00:00"})
    definitions = build_definitions(settings, warehouse=warehouse_resource(engine, settings))
    job = definitions.resolve_job_def("bandit_propensities_update")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance)
        assert result.success
        (materialisation,) = result.asset_materializations_for_node("bandit_decision_propensities")
        assert materialisation.metadata["decisions"].value == 12
        assert materialisation.metadata["status_ok"].value == 12
        # Nothing new: the next hour records nothing again.
        again = job.execute_in_process(instance=instance)
        (materialisation,) = again.asset_materializations_for_node("bandit_decision_propensities")
        assert materialisation.metadata["decisions"].value == 0
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_decision_propensities") == 24
