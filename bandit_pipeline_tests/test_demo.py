"""`make demo` end to end, small: the dry run through serving, ingestion, the job and the
report; the rollout-step options; and that it never touches data it did not make."""

from __future__ import annotations

import hashlib

from click.testing import CliRunner

from bandit_pipeline.cli import main
from bandit_pipeline.online_store import open_store
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.migrate import upgrade
from bandit_pipeline_tests.helpers import scalar

SMALL = ["demo", "--days", "0.25", "--users", "300", "--requests-per-hour", "300",
         "--fresh-items", "12"]  # fmt: skip
# Where only the safety rules or a restart are under test: the shortest run, little traffic.
TINY = ["demo", "--days", "0.25", "--users", "50", "--requests-per-hour", "60",
        "--fresh-items", "6"]  # fmt: skip


def _configured(tmp_path) -> dict[str, str]:
    """Stores that stand for real ones: a warehouse holding an event, a store of its own."""
    warehouse = f"sqlite:///{tmp_path}/real_warehouse.db"
    engine = make_engine(warehouse)
    upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO bandit_rewards (event_id, event_type, occurred_at, namespace, surface,"
            " user_id, request_id, item_id, explore) VALUES ('real-1', 'impression',"
            " '2026-12-01 10:00:00.000000', 'default', 'home', 'u', 'r', 'i', 1)"
        )
    engine.dispose()
    return {
        "BANDIT_WAREHOUSE_URL": warehouse,
        "BANDIT_ONLINE_STORE_URL": f"sqlite:///{tmp_path}/real_store.db",
    }


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_runs_end_to_end_on_stores_of_its_own(tmp_path):
    env = _configured(tmp_path)
    before = _digest(tmp_path / "real_warehouse.db")
    folder = tmp_path / "demo"
    result = CliRunner().invoke(main, [*SMALL, "--folder", str(folder)], env=env)
    assert result.exit_code == 0, result.output
    output = result.output
    assert f"warehouse: sqlite:///{folder}/warehouse.db" in output
    assert "simulating 0.25 days (24 windows)" in output
    assert "malformed rows aside" in output
    assert f"report: {folder}/report/report.html" in output
    assert "verdict:" in output
    assert "cumulative regret: Thompson sampling" in output
    assert (folder / "report" / "report.html").stat().st_size > 10_000
    assert (folder / "truth.json").exists()
    engine = make_engine(f"sqlite:///{folder}/warehouse.db")
    # 24 windows, each run by the job: every window published the next snapshot.
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_posterior_runs") == 24
    explored = scalar(engine, "SELECT COUNT(*) FROM bandit_decisions WHERE explored = 1")
    assert explored > 500
    engine.dispose()
    # The configured stores are untouched; the demo's own hold its data and no flags.
    assert _digest(tmp_path / "real_warehouse.db") == before
    assert not (tmp_path / "real_store.db").exists()
    assert open_store(f"sqlite:///{folder}/online_store.db").flags("default") == {}
    # A second run starts again from empty stores.
    again = CliRunner().invoke(main, [*TINY, "--folder", str(folder)], env=env)
    assert again.exit_code == 0, again.output
    assert "schema: empty ->" in again.output


def test_demo_refuses_a_configured_warehouse_that_holds_data(tmp_path):
    env = _configured(tmp_path)
    before = _digest(tmp_path / "real_warehouse.db")
    refused = CliRunner().invoke(main, [*TINY, "--into-configured-stores"], env=env)
    assert refused.exit_code == 2
    assert "already holds events or a catalog" in refused.output
    assert "--allow-existing-data" in refused.output
    assert _digest(tmp_path / "real_warehouse.db") == before

    allowed = CliRunner().invoke(
        main, [*TINY, "--into-configured-stores", "--allow-existing-data"], env=env
    )
    assert allowed.exit_code == 0, allowed.output
    engine = make_engine(env["BANDIT_WAREHOUSE_URL"])
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards WHERE event_id = 'real-1'") == 1
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") > 100
    engine.dispose()
    store = open_store(env["BANDIT_ONLINE_STORE_URL"])
    assert store.load("default", "home") is not None  # staging: the snapshot is published
    assert store.flags("default") == {}  # and no flag is left behind


def test_demo_goes_ahead_on_an_empty_configured_warehouse(tmp_path):
    env = {
        "BANDIT_WAREHOUSE_URL": f"sqlite:///{tmp_path}/empty.db",
        "BANDIT_ONLINE_STORE_URL": f"sqlite:///{tmp_path}/store.db",
    }
    result = CliRunner().invoke(main, [*TINY, "--into-configured-stores"], env=env)
    assert result.exit_code == 0, result.output


def test_demo_reproduces_rollout_step_two(tmp_path):
    """--traffic-percent 10 --slots 1: a tenth of the treatment users explore, one slot."""
    folder = tmp_path / "demo"
    args = [*SMALL, "--traffic-percent", "10", "--slots", "1", "--folder", str(folder)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "10% of traffic, 1 slot(s)" in result.output
    engine = make_engine(f"sqlite:///{folder}/warehouse.db")
    rows = dict(
        engine.connect()
        .exec_driver_sql(
            "SELECT reason, COUNT(*) FROM bandit_decisions"
            " WHERE reason IN ('explored', 'outside_rollout', 'no_eligible_candidates')"
            " GROUP BY reason"
        )
        .all()
    )
    inside = rows.get("explored", 0) + rows.get("no_eligible_candidates", 0)
    total = inside + rows["outside_rollout"]
    # Users, not requests, are hashed: the share of requests varies more than a binomial
    # of requests would, so the tolerance is generous.
    assert 0.03 < inside / total < 0.2, rows
    two_slots = "SELECT COUNT(*) FROM bandit_decisions WHERE explore_slots LIKE '%,%'"
    assert scalar(engine, two_slots) == 0
    engine.dispose()
