"""`make demo` end to end, small: ingest, the Dagster job, publish, served responses."""

from __future__ import annotations

from click.testing import CliRunner

from bandit_pipeline.cli import main


def test_demo_runs_end_to_end(tmp_path):
    env = {
        "BANDIT_WAREHOUSE_URL": f"sqlite:///{tmp_path}/warehouse.db",
        "BANDIT_ONLINE_STORE_URL": f"sqlite:///{tmp_path}/online.db",
    }
    result = CliRunner().invoke(main, ["demo", "--events", "3000", "--items", "80"], env=env)
    assert result.exit_code == 0, result.output
    output = result.output
    assert "rejected=2" in output
    assert "top posteriors per surface" in output
    for surface in ("home", "pdp", "cart"):
        assert f"published snapshot {surface}:" in output
    served = [line for line in output.splitlines() if line.startswith("  ") and "*" in line]
    assert len(served) == 6  # every served response got exploration items
    assert output.count("reason=explored") == 6
    assert "metric rollups of the last two hours" in output
