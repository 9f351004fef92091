"""Off-policy evaluation: the posteriors of a candidate against the reference definition,
the estimators' coverage on synthetic logs, and `evaluate` / `export obp` on a real
warehouse (both dialects) with decisions made by the real serving path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from bandit_pipeline.cli import main
from bandit_pipeline.evaluation.evaluate import evaluate
from bandit_pipeline.evaluation.obp_export import export_obp
from bandit_pipeline.evaluation.propensities import update_propensities
from bandit_pipeline.ingest import ingest_events, load_catalog
from bandit_pipeline.online_store import open_store
from bandit_pipeline.policy import reference_posteriors
from bandit_pipeline.policy.candidates import parse_policy, slot_frequencies, slot_probabilities
from bandit_pipeline.policy.counterfactual import (
    Outcome,
    TrainingImpression,
    evidence_increments,
    posteriors_as_of,
)
from bandit_pipeline.policy.ope import doubly_robust, effective_sample_size, ips, snips
from bandit_pipeline.pool import publish_pools
from bandit_pipeline.serving import DecisionRequest, ExplorationService
from bandit_pipeline.settings import load_settings
from bandit_pipeline_tests.helpers import (
    DEFAULT_PARAMS,
    PARAMS,
    PROPERTY,
    WINDOW_ENDS,
    event_streams,
    stamp,
)

# --- The candidate's posteriors: the definition, at many times at once -----------------


def _split(events):
    impressions, outcomes = [], []
    for e in events:
        key = (e.namespace, e.surface, e.request_id, e.item_id)
        times = (e.occurred_at.timestamp(), e.ingested_at.timestamp())
        if e.event_type == "impression":
            impressions.append(TrainingImpression(key, *times, e.explore, e.variant))
        else:
            outcomes.append(Outcome(key, e.event_type, *times))
    return impressions, outcomes


@PROPERTY
@given(events=event_streams(), params=st.sampled_from([PARAMS, DEFAULT_PARAMS]))
def test_candidate_posteriors_equal_the_reference_definition(events, params):
    increments = evidence_increments(*_split(events), params)
    items = sorted({(e.surface, e.item_id) for e in events})
    for as_of in WINDOW_ENDS:
        expected = reference_posteriors(events, as_of, params)
        alpha, beta = posteriors_as_of(increments, as_of.timestamp(), items, params)
        for (surface, item), a, b in zip(items, alpha, beta, strict=True):
            want = expected.get(("default", surface, item), (params.prior_alpha, params.prior_beta))
            assert (a, b) == pytest.approx(want, rel=1e-9, abs=1e-12)


# --- The estimators on synthetic logs, where the truth is known ------------------------


def test_the_intervals_cover_a_known_value_at_about_the_nominal_rate():
    """A 6-armed bandit logged by a skewed random policy; the candidate prefers other
    arms. Over 200 replications of 3,000 impressions the 95% intervals cover the
    candidate's true value in 90-99% of cases (with 800 a replication, IPS's t interval
    covers about 92%: the rare heavy terms need a few thousand impressions), and DR, with
    a reward model off by a constant, errs less than IPS."""
    rng = np.random.default_rng(1)
    mu = np.array([0.02, 0.05, 0.03, 0.08, 0.01, 0.04])
    logging = np.array([0.35, 0.25, 0.15, 0.1, 0.1, 0.05])
    target = np.array([0.05, 0.1, 0.1, 0.5, 0.05, 0.2])
    truth = float(target @ mu)
    model = mu + 0.01
    covered = {"ips": 0, "snips": 0, "dr": 0}
    errors = {"ips": [], "dr": []}
    for replication in range(200):
        actions = rng.choice(6, size=3_000, p=logging)
        rewards = (rng.random(3_000) < mu[actions]).astype(float)
        weights = target[actions] / logging[actions]
        estimates = {
            "ips": ips(rewards, weights),
            "dr": doubly_robust(rewards, weights, model[actions], np.full(3_000, target @ model)),
        }
        if replication % 2 == 0:  # the bootstrap is the slow one: every other replication
            estimates["snips"] = snips(rewards, weights, rng, resamples=1_000)
        for name, estimate in estimates.items():
            covered[name] += estimate.covers(truth)
        errors["ips"].append(abs(estimates["ips"].value - truth))
        errors["dr"].append(abs(estimates["dr"].value - truth))
    for name, count in covered.items():
        replications = 100 if name == "snips" else 200
        assert 0.90 <= count / replications <= 0.99, (name, count)
    assert np.mean(errors["dr"]) < np.mean(errors["ips"])


def test_equal_weights_give_the_sample_mean_and_the_full_sample_size():
    rewards = np.array([0.0, 1.0, 0.2, 0.0])
    weights = np.ones(4)
    assert ips(rewards, weights).value == pytest.approx(0.3)
    assert snips(rewards, weights, np.random.default_rng(0)).value == pytest.approx(0.3)
    assert effective_sample_size(weights) == pytest.approx(4.0)
    assert effective_sample_size(np.array([4.0, 0.0, 0.0, 0.0])) == pytest.approx(1.0)


# --- Candidate policies -----------------------------------------------------------------


def test_policy_specs_parse_and_bad_ones_say_why():
    policy = parse_policy("thompson:prior_beta=20,BANDIT_HALF_LIFE_DAYS=3")
    assert policy.overrides == {"prior_beta": 20.0, "half_life_days": 3.0}
    assert policy.recomputes_evidence
    assert not parse_policy("thompson:prior_alpha=2").recomputes_evidence
    assert parse_policy("scores:ranker.json").scores_path == "ranker.json"
    assert parse_policy("thompson:prior_mode=empirical").overrides == {"prior_mode": "empirical"}
    for bad, words in [
        ("epsilon", "expected one of"),
        ("uniform:prior_beta=2", "takes no settings"),
        ("thompson:gamma=1", "KEY=VALUE"),
        ("thompson:prior_beta=many", "must be a number"),
        ("scores", "scores file"),
        ("thompson:prior_mode=guess", "prior_mode is one of"),
        ("thompson:prior_mode=empirical,half_life_days=3", "cannot be combined"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_policy(bad)


def test_uniform_and_ranked_candidates_have_their_exact_probabilities():
    rng = np.random.default_rng(0)
    uniform = slot_probabilities(parse_policy("uniform"), 4, 2, rng)
    assert uniform.tolist() == [[0.25, 0.25]] * 4
    ranked = slot_probabilities(
        parse_policy("freshest"), 3, 2, rng, scores=np.array([0.2, 0.9, 0.5])
    )
    assert ranked.tolist() == [[0, 0], [1, 0], [0, 1]]
    greedy = slot_probabilities(
        parse_policy("greedy"), 3, 1, rng, alpha=np.array([1.0, 5, 2]), beta=np.array([9.0, 5, 2])
    )
    assert greedy[:, 0].tolist() == [0, 1, 0]
    frequencies = slot_frequencies(np.array([[0.1, 0.9, 0.5], [0.8, 0.2, 0.3]]), 2)
    assert frequencies.tolist() == [[0.5, 0.0], [0.5, 0.0], [0.0, 1.0]]


# --- On a warehouse: decisions from the real serving path, events through ingestion ---

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ITEMS = [f"new-{i}" for i in range(6)]
CLICK_RATE = {"new-0": 0.02, "new-1": 0.10, "new-2": 0.05, "new-3": 0.30, "new-4": 0.08,
              "new-5": 0.15}  # fmt: skip
FRESHNESS = {"new-0": 0.6, "new-1": 0.7, "new-2": 0.8, "new-3": 0.65, "new-4": 0.99,
             "new-5": 0.95}  # fmt: skip


@pytest.fixture
def logged(engine, settings, tmp_path):
    """600 decisions of 2 slots on one published pool, their impressions and clicks
    ingested, and their propensities recorded."""
    from sqlalchemy import text

    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(
        "\n".join(
            orjson.dumps({"item_id": item, "category": "shoes", "price": 30.0,
                          "availability": 0.9, "freshness_index": FRESHNESS[item]}).decode()
            for item in ITEMS
        )
    )  # fmt: skip
    load_catalog(engine, str(catalog), settings)
    # Wide posteriors: every item keeps a fair chance of each slot, so the candidates'
    # choices are all in the logs' support.
    alpha = np.array([1.0, 1.5, 1.2, 2.5, 1.4, 1.8])
    beta = np.array([12.0, 10.0, 11.0, 8.0, 10.0, 9.0])
    with engine.begin() as connection:
        for item, a, b in zip(ITEMS, alpha, beta, strict=True):
            connection.execute(
                text("INSERT INTO bandit_candidate_pool (as_of, namespace, surface, item_id, "
                     "alpha, beta, evidence) VALUES (:t, 'default', 'home', :i, :a, :b, 0)"),
                {"t": stamp(engine, AS_OF), "i": item, "a": a, "b": b},
            )  # fmt: skip
    store_url = f"sqlite:///{tmp_path}/online_store.db"
    store = open_store(store_url)
    publish_pools(engine, store, AS_OF, "default", ("home",))
    serving = load_settings(
        warehouse_url=settings.warehouse_url, online_store_url=store_url,
        exploration_enabled=True, explore_slots=2, decisions_table=True,
    )  # fmt: skip
    service = ExplorationService(serving, store, seed_source=np.random.default_rng(3),
                                 background=False)  # fmt: skip
    rng = np.random.default_rng(4)
    events = []
    try:
        for i in range(600):
            at = AS_OF + timedelta(seconds=5 * i)
            response = service.decide(
                DecisionRequest("default", "home", f"u{i}", f"r{i}",
                                [f"ranked-{j}" for j in range(8)], decided_at=at)
            )  # fmt: skip
            for item in response.items:
                if not item.explore:
                    continue
                base = {"namespace": "default", "surface": "home", "user_id": f"u{i}",
                        "request_id": f"r{i}", "item_id": item.item_id, "slot": item.slot,
                        "explore": True}  # fmt: skip
                shown = {"event_type": "impression", "occurred_at": at.isoformat()}
                events.append({**base, **shown, "event_id": f"r{i}-{item.slot}-i"})
                if rng.random() < CLICK_RATE[item.item_id]:
                    click = (at + timedelta(seconds=30)).isoformat()
                    events.append({**base, "event_id": f"r{i}-{item.slot}-c",
                                   "event_type": "click", "occurred_at": click})  # fmt: skip
        service.decisions.flush()
    finally:
        service.close()
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    ingest_events(engine, str(path), settings, historical=True)
    assert update_propensities(engine).statuses == {"ok": 600}
    return settings.model_copy(update={"reward_weight_add_to_cart": 0.0,
                                       "reward_weight_purchase": 0.0})  # fmt: skip


UNTIL = AS_OF + timedelta(hours=1)


def test_evaluate_estimates_each_candidate_from_the_logs(engine, logged):
    truth = np.array([CLICK_RATE[item] for item in ITEMS])
    policies = [parse_policy(p) for p in ("served", "uniform", "greedy", "freshest")]
    result = evaluate(
        engine, logged, AS_OF, UNTIL, policies,
        truth=lambda surface, items, at: np.array([CLICK_RATE[i] for i in items]),
    )  # fmt: skip
    assert len(result.logged) == 1200
    rng = np.random.default_rng(0)
    observed = result.observed()
    served, uniform, greedy, freshest = result.policies
    served_estimates = served.estimates(result.logged, rng)
    assert served_estimates.ips.value == pytest.approx(observed.value, rel=0.05)
    assert served_estimates.effective_sample_size > 1100
    # Uniform over 6 items: the truth is the mean click rate, whatever the logged choices.
    assert uniform.true_value() == pytest.approx(truth.mean())
    for terms in (uniform, greedy, freshest):
        estimates = terms.estimates(result.logged, rng)
        for estimate in (estimates.ips, estimates.snips, estimates.dr):
            assert estimate.low < estimate.value < estimate.high
            assert estimate.high - estimate.low < 0.15
    # Freshest shows new-4 (click rate 0.08) then new-5 (0.15); greedy follows the
    # posterior means, new-3 (0.30) then new-5, and the estimates tell the two apart.
    assert freshest.true_value() == pytest.approx(0.115)
    assert greedy.true_value() == pytest.approx(0.225)
    assert (
        greedy.estimates(result.logged, rng).dr.value
        > freshest.estimates(result.logged, rng).dr.value
    )


def test_the_export_has_the_layout_obp_checks(engine, logged, tmp_path):
    export = export_obp(engine, logged, AS_OF, UNTIL, "home", tmp_path / "obp")
    data = np.load(export.npz_path)
    feedback = {key: data[key] for key in data.files}
    n, k = int(feedback["n_rounds"]), int(feedback["n_actions"])
    assert (n, k) == (1200, 6)
    # What obp.utils.check_ope_inputs and OffPolicyEvaluation require of bandit_feedback.
    for key in ("action", "position", "reward", "pscore"):
        assert feedback[key].shape == (n,), key
    assert np.issubdtype(feedback["action"].dtype, np.integer)
    assert feedback["action"].min() >= 0
    assert feedback["action"].max() < k
    assert np.issubdtype(feedback["position"].dtype, np.integer)
    assert set(feedback["position"].tolist()) == {0, 1}
    assert np.all(feedback["pscore"] > 0)
    assert np.all(feedback["pscore"] <= 1)
    assert np.all((feedback["reward"] >= 0) & (feedback["reward"] <= 1))
    assert feedback["context"].ndim == 2
    assert feedback["context"].shape[0] == n
    assert feedback["action_context"].ndim == 2
    assert feedback["action_context"].shape[0] == k
    assert feedback["eligible"][np.arange(n), feedback["action"]].all()
    description = orjson.loads(export.json_path.read_bytes())
    assert description["actions"] == ITEMS
    assert description["len_list"] == 2
    # OBP's IPW with a uniform action_dist over each round's items is our uniform IPS.
    action_dist = feedback["eligible"][:, :, None] / feedback["eligible"].sum(axis=1)[:, None, None]
    action_dist = np.repeat(action_dist, 2, axis=2)
    assert np.allclose(action_dist.sum(axis=1), 1)
    obp_ipw = np.mean(
        feedback["reward"]
        * action_dist[np.arange(n), feedback["action"], feedback["position"]]
        / feedback["pscore"]
    )
    ours = evaluate(engine, logged, AS_OF, UNTIL, [parse_policy("uniform")])
    assert obp_ipw == pytest.approx(
        ours.policies[0].estimates(ours.logged, np.random.default_rng(0)).ips.value, rel=1e-12
    )


def test_the_commands_print_the_estimates_and_write_the_export(engine, logged, tmp_path):
    env = {"BANDIT_WAREHOUSE_URL": logged.warehouse_url, "BANDIT_REWARD_WEIGHT_ADD_TO_CART": "0",
           "BANDIT_REWARD_WEIGHT_PURCHASE": "0"}  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["evaluate", "--since", "2026-11-20T12:00", "--until", "2026-11-20T13:00",
         "--policy", "uniform", "--policy", "thompson:prior_beta=100",
         "--policy", "thompson:half_life_days=0.01", "--surface", "home"],
        env=env, catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "logged: 600 explored decisions with propensities; 1200 exploration impressions" in (
        result.output
    )
    lines = result.output.splitlines()
    assert any(line.startswith("uniform ") and line.count("[") == 3 for line in lines)
    assert any(line.startswith("thompson:prior_beta=100 ") for line in lines)
    # Recomputed from the events with a 15-minute half-life: the hour's evidence decays.
    assert any(line.startswith("thompson:half_life_days=0.01 ") for line in lines)
    bad = runner.invoke(
        main,
        ["evaluate", "--since", "2026-11-20T12:00", "--until", "2026-11-20T13:00",
         "--policy", "thompson:gamma=2"],
        env=env,
    )  # fmt: skip
    assert bad.exit_code == 2
    assert "KEY=VALUE" in bad.output
    out = tmp_path / "export"
    exported = runner.invoke(
        main,
        ["export", "obp", "--since", "2026-11-20T12:00", "--until", "2026-11-20T13:00",
         "--surface", "home", "--out", str(out)],
        env=env, catch_exceptions=False,
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert "(1200 rounds, 6 actions)" in exported.output
    assert (out / "bandit_feedback.npz").is_file()
    assert (out / "bandit_feedback.json").is_file()
    updated = runner.invoke(main, ["propensities", "update"], env=env, catch_exceptions=False)
    assert updated.output.strip() == "decisions=0 ok=0 snapshots_copied=0"


def test_a_candidate_prior_replaces_the_prior_each_snapshot_was_served_with(engine, logged):
    """A snapshot served with a recorded empirical prior holds that prior, not the fixed
    one: the candidate's posteriors keep the snapshot's evidence under its own prior."""
    from sqlalchemy import text

    from bandit_pipeline.evaluation.evaluate import SnapshotPriors, _posterior_source
    from bandit_pipeline.evaluation.logs import load_logged

    first = load_logged(engine, logged, AS_OF, UNTIL, None)
    context = first.contexts[0]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bandit_priors (as_of, namespace, surface, alpha, beta, method,"
                " items, max_strength, min_items, min_evidence) VALUES (:as_of, 'default',"
                " :surface, 0.5, 9.5, 'empirical', 12, 20, 10, 50)"
            ),
            {"as_of": stamp(engine, context.as_of), "surface": context.surface},
        )
    priors = SnapshotPriors(engine, logged)
    assert priors.served(context) == (0.5, 9.5)
    assert priors.empirical(context) == (0.5, 9.5)
    alpha, beta = context.alpha, context.beta
    for spec, prior in [
        ("thompson:prior_mode=fixed", (logged.prior_alpha, logged.prior_beta)),
        ("thompson:prior_mode=empirical", (0.5, 9.5)),
        ("thompson:prior_alpha=2,prior_beta=30", (2.0, 30.0)),
    ]:
        source = _posterior_source(engine, logged, first, parse_policy(spec), priors)
        got_alpha, got_beta = source(context, list(context.items), alpha, beta)
        np.testing.assert_allclose(got_alpha, prior[0] + np.maximum(alpha - 0.5, 0), rtol=1e-12)
        np.testing.assert_allclose(got_beta, prior[1] + np.maximum(beta - 9.5, 0), rtol=1e-12)
