"""The command line: counts, exit codes, catalog upserts, no secrets printed."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from bandit_pipeline.cli import main
from bandit_pipeline_tests.helpers import event, rows, scalar


def run(args, settings, **env):
    runner = CliRunner()
    return runner.invoke(
        main,
        args,
        env={"BANDIT_WAREHOUSE_URL": settings.warehouse_url, **env},
        catch_exceptions=False,
    )


def test_ingest_prints_counts_and_succeeds_despite_bad_rows(engine, settings, tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(orjson.dumps(e).decode() for e in [event("a"), event("b", slot=-1)]))
    result = run(["ingest", str(path)], settings)
    assert result.exit_code == 0, result.output
    assert "read=2 inserted=1 duplicate=0 rejected=1" in result.output
    assert "slot" in result.output  # the reasons are summarised


def test_ingest_reads_stdin(engine, settings):
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["ingest", "-"],
        input=orjson.dumps(event("s1")).decode() + "\n",
        env={"BANDIT_WAREHOUSE_URL": settings.warehouse_url},
    )
    assert result.exit_code == 0, result.output
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_rewards") == 1


def test_unreadable_file_exits_non_zero(engine, settings, tmp_path):
    result = run(["ingest", str(tmp_path / "missing.jsonl")], settings)
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_unreachable_warehouse_exits_non_zero_without_the_password(tmp_path, settings):
    path = tmp_path / "e.jsonl"
    path.write_text(orjson.dumps(event("a")).decode())
    result = run(
        ["ingest", str(path)],
        settings,
        BANDIT_WAREHOUSE_URL="postgresql+psycopg://bob:hunter2@127.0.0.1:1/nowhere",
    )
    assert result.exit_code == 2
    assert "warehouse error" in result.output
    assert "hunter2" not in result.output


def test_invalid_setting_exits_non_zero_naming_it(settings, tmp_path):
    result = run(["db", "upgrade"], settings, BANDIT_HALF_LIFE_DAYS="-3")
    assert result.exit_code == 2
    assert "BANDIT_HALF_LIFE_DAYS" in result.output


def test_db_upgrade_is_safe_to_run_again(settings):
    first = run(["db", "upgrade"], settings)
    assert first.exit_code == 0
    assert "already at revision" in first.output


def test_catalog_load_upserts_by_namespace_and_item(engine, settings, tmp_path):
    path = tmp_path / "c.jsonl"
    items = [
        {
            "item_id": "i1",
            "title": "Shoe",
            "category": "shoes",
            "price": 50,
            "availability": 0.5,
            "freshness_index": 0.9,
            "first_seen_at": "2026-11-10T00:00:00Z",
        },
        {"item_id": "i1", "namespace": "other", "price": 10},
        {"item_id": "i2", "price": -5},
        {"item_id": "i3", "availability": 2},
    ]
    path.write_text("\n".join(orjson.dumps(i).decode() for i in items))
    result = run(["catalog", "load", str(path)], settings)
    assert result.exit_code == 0, result.output
    assert "read=4 upserted=2 duplicate=0 rejected=2" in result.output

    update = tmp_path / "c2.jsonl"
    update.write_text(
        orjson.dumps(
            {
                "item_id": "i1",
                "title": "Shoe v2",
                "price": 55,
                "first_seen_at": "2026-11-20T00:00:00Z",
            }
        ).decode()
    )
    assert run(["catalog", "load", str(update)], settings).exit_code == 0
    got = rows(
        engine,
        "SELECT namespace, item_id, title, price, first_seen_at"
        " FROM item_catalog ORDER BY namespace",
    )
    assert [(r[0], r[1], r[2], r[3]) for r in got] == [
        ("default", "i1", "Shoe v2", 55.0),
        ("other", "i1", None, 10.0),
    ]
    assert str(got[0][4]).startswith("2026-11-10")  # the earliest first_seen_at is kept
    reasons = sorted(r for (r,) in rows(engine, "SELECT reason FROM item_catalog_rejected"))
    assert reasons[0].startswith("availability: must be between 0 and 1")
    assert reasons[1].startswith("price: must be between 0 and 1e+09")


def test_killswitch_status_and_reset(engine, settings, tmp_path):
    from datetime import UTC, datetime

    from bandit_pipeline.online_store import KillSwitchState, open_store

    store_url = f"sqlite:///{tmp_path}/online.db"
    open_store(store_url).set_killswitch(
        "default", "home", KillSwitchState(True, "reward too low", datetime.now(UTC), "sensor")
    )
    env = {"BANDIT_ONLINE_STORE_URL": store_url}
    status = run(["killswitch", "status"], settings, **env)
    assert status.exit_code == 0, status.output
    assert "default/home: TRIPPED" in status.output
    assert "default/cart: armed (never tripped)" in status.output
    reset = run(
        ["killswitch", "reset", "--surface", "home", "--reason", "ranking fixed"], settings, **env
    )
    assert reset.exit_code == 0, reset.output
    assert not open_store(store_url).killswitch("default", "home").tripped
    status = run(["killswitch", "status"], settings, **env)
    assert "default/home: armed" in status.output
    assert "home reset by" in status.output
    assert "ranking fixed" in status.output


def test_experiment_readout_without_traffic(engine, settings):
    result = run(["experiment", "readout"], settings)
    assert result.exit_code == 0, result.output
    assert "no experiment traffic" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["flags", "get", "--namespace", "default\n"],
        ["killswitch", "reset", "--surface", "home\n", "--reason", "r"],
        ["decide", "--surface", "home", "--user", "u\x00", "--items", "a,b"],
        ["decide", "--surface", "home", "--user", "u1", "--items", "a,b\u202ec"],
    ],
)
def test_the_cli_applies_the_shared_rule_for_names_and_ids(tmp_path, args):
    env = {"BANDIT_ONLINE_STORE_URL": f"sqlite:///{tmp_path}/s.db",
           "BANDIT_WAREHOUSE_URL": f"sqlite:///{tmp_path}/w.db"}  # fmt: skip
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2
    assert "Invalid value for '--" in result.output
    assert not (tmp_path / "s.db").exists()


def test_a_failed_job_step_names_its_cause_in_one_line(tmp_path):
    env = {
        "BANDIT_WAREHOUSE_URL": "postgresql+psycopg://bob:pw-s3cret@127.0.0.1:1/nowhere",
        "BANDIT_ONLINE_STORE_URL": f"sqlite:///{tmp_path}/s.db",
        "BANDIT_PARTITIONS_START": "2026-12-01-00:00",
    }
    result = CliRunner().invoke(main, ["job", "run", "--partition", "2026-12-01-10:00"], env=env)
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "failed (run " in line
    assert "posterior_update: warehouse unreachable: connection failed" in line
    assert "pw-s3cret" not in result.output


def test_flags_set_takes_a_rollout_share_and_refuses_a_bad_one(sqlite_engine, tmp_path):
    env = {"BANDIT_ONLINE_STORE_URL": f"sqlite:///{tmp_path}/s.db",
           "BANDIT_WAREHOUSE_URL": sqlite_engine.url.render_as_string()}  # fmt: skip
    ok = CliRunner().invoke(main, ["flags", "set", "bandit_explore_traffic_percent", "10"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "bandit_explore_traffic_percent=10" in ok.output
    for bad in ("150", "100.5", "ten", "nan"):
        refused = CliRunner().invoke(
            main, ["flags", "set", "bandit_explore_traffic_percent", bad], env=env
        )
        assert refused.exit_code == 2
        assert "takes a share of users from 0 to 100" in refused.output


def test_flags_get_shows_every_flag_with_its_source(sqlite_engine, tmp_path):
    env = {"BANDIT_ONLINE_STORE_URL": f"sqlite:///{tmp_path}/s.db",
           "BANDIT_WAREHOUSE_URL": sqlite_engine.url.render_as_string(),
           "BANDIT_EXPLORE_TRAFFIC_PERCENT": "25", "BANDIT_EXPLORE_SLOTS": "1"}  # fmt: skip
    set_ = CliRunner().invoke(
        main, ["flags", "set", "bandit_exploration_enabled", "false"], env=env
    )
    assert set_.exit_code == 0, set_.output
    shown = CliRunner().invoke(main, ["flags", "get"], env=env)
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        "default bandit_exploration_enabled=false (store)",
        "default bandit_explore_slots=1 (settings)",
        "default bandit_explore_traffic_percent=25 (settings)",
    ]


def test_flags_set_and_unset_are_recorded_in_the_warehouse(engine, settings, tmp_path):
    """Who set which value when: what an emptied store gets its flags back from."""
    import getpass

    from bandit_pipeline.online_store import open_store
    from bandit_pipeline.store_record import recorded_flags

    env = {"BANDIT_ONLINE_STORE_URL": f"sqlite:///{tmp_path}/online.db"}
    for args in (
        ["flags", "set", "bandit_exploration_enabled", "TRUE"],
        ["flags", "set", "bandit_explore_slots", "2"],
        ["flags", "set", "--namespace", "other", "bandit_explore_slots", "1"],
        ["flags", "unset", "bandit_explore_slots"],
    ):
        result = run(args, settings, **env)
        assert result.exit_code == 0, result.output
    events = rows(
        engine,
        "SELECT namespace, name, value, actor FROM bandit_flag_events ORDER BY event_id",
    )
    actor = getpass.getuser()
    assert [tuple(event) for event in events] == [
        ("default", "bandit_exploration_enabled", "true", actor),
        ("default", "bandit_explore_slots", "2", actor),
        ("other", "bandit_explore_slots", "1", actor),
        ("default", "bandit_explore_slots", None, actor),
    ]
    assert scalar(engine, "SELECT COUNT(*) FROM bandit_flag_events WHERE at IS NULL") == 0
    assert recorded_flags(engine, "default") == {"bandit_exploration_enabled": "true"}
    assert recorded_flags(engine, "other") == {"bandit_explore_slots": "1"}
    assert open_store(f"sqlite:///{tmp_path}/online.db").flags("default") == {
        "bandit_exploration_enabled": "true"
    }


def test_a_flag_the_warehouse_cannot_record_is_not_set(sqlite_engine, tmp_path):
    """The store write and the record go together: without the record, no flag."""
    from bandit_pipeline.online_store import open_store

    store_url = f"sqlite:///{tmp_path}/online.db"
    env = {"BANDIT_ONLINE_STORE_URL": store_url,
           "BANDIT_WAREHOUSE_URL": f"sqlite:///{tmp_path}/not-migrated.db"}  # fmt: skip
    result = CliRunner().invoke(main, ["flags", "set", "bandit_explore_slots", "2"], env=env)
    assert result.exit_code == 2
    assert "warehouse error" in result.output
    assert open_store(store_url).flags("default") == {}


def test_commands_that_need_sql_refuse_a_spark_warehouse_in_one_line(tmp_path):
    env = {"BANDIT_WAREHOUSE_URL": f"spark://local[2]?warehouse={tmp_path}/lake"}
    result = CliRunner().invoke(main, ["experiment", "readout"], env=env)
    assert result.exit_code == 2
    assert "needs a PostgreSQL or SQLite warehouse" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "lake").exists()
