"""The settings object: defaults, environment variables, errors that name the variable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bandit_pipeline.redact import redact_url
from bandit_pipeline.settings import Settings, SettingsError, default_settings, load_settings


def test_defaults_match_the_design(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("BANDIT_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.reward_weights == {"click": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
    assert (settings.prior_alpha, settings.prior_beta, settings.half_life_days) == (1.0, 1.0, 14.0)
    assert settings.attribution_window_hours == 24.0
    assert settings.warehouse_url.startswith("sqlite:///.bandit/")
    assert settings.online_store_url.startswith("sqlite:///.bandit/")
    assert settings.namespace == "default"
    assert settings.experiment_enabled is False


def test_default_settings_ignore_the_environment(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("BANDIT_"):
            monkeypatch.delenv(name)
    documented = load_settings()
    monkeypatch.setenv("BANDIT_HALF_LIFE_DAYS", "3")
    monkeypatch.setenv("BANDIT_SURFACES", "home")
    monkeypatch.setenv("BANDIT_MAX_CLOCK_SKEW_SECONDS", "60")
    assert load_settings().half_life_days == 3.0  # the environment is read ...
    defaults = default_settings()  # ... but not here
    assert defaults.model_dump() == documented.model_dump()
    assert defaults.max_clock_skew.total_seconds() == 3600.0
    assert default_settings(half_life_days=2.0).posterior_parameters().half_life_days == 2.0


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("BANDIT_HALF_LIFE_DAYS", "7.5")
    monkeypatch.setenv("BANDIT_REWARD_WEIGHT_PURCHASE", "10")
    monkeypatch.setenv("BANDIT_EXPERIMENT_ENABLED", "true")
    monkeypatch.setenv("BANDIT_EXPERIMENT_SURFACES", "home, cart")
    monkeypatch.setenv("BANDIT_EXPERIMENT_HOLDOUT_PERCENT", "5")
    settings = load_settings()
    assert settings.half_life_days == 7.5
    assert settings.max_reward_weight == 10.0
    assert settings.experiment_enabled is True
    assert settings.experiment_surfaces == ["home", "cart"]
    assert settings.experiment_holdout_percent == 5.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BANDIT_HALF_LIFE_DAYS", "-1"),
        ("BANDIT_HALF_LIFE_DAYS", "soon"),
        ("BANDIT_PRIOR_ALPHA", "0"),
        ("BANDIT_EXPERIMENT_HOLDOUT_PERCENT", "150"),
        ("BANDIT_NAMESPACE", "two words"),
        ("BANDIT_WAREHOUSE_URL", "mysql://x"),
        ("BANDIT_ONLINE_STORE_URL", "memcached://x"),
        ("BANDIT_INGEST_BATCH_SIZE", "0"),
        ("BANDIT_MAX_CLOCK_SKEW_SECONDS", "172800"),
        ("BANDIT_PARTITIONS_START", "2026-11-01-00:10"),
    ],
)
def test_invalid_value_names_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_all_weights_zero_is_refused(monkeypatch):
    for kind in ("CLICK", "ADD_TO_CART", "PURCHASE"):
        monkeypatch.setenv(f"BANDIT_REWARD_WEIGHT_{kind}", "0")
    with pytest.raises(SettingsError, match="BANDIT_REWARD_WEIGHT"):
        load_settings()


def test_passwords_never_show(monkeypatch):
    monkeypatch.setenv("BANDIT_WAREHOUSE_URL", "postgresql+psycopg://bob:hunter2@db:5432/w")
    monkeypatch.setenv("BANDIT_ONLINE_STORE_URL", "redis://:s3cret@cache:6379/0")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert "s3cret" not in repr(settings)
    assert "hunter2" not in str(settings)
    monkeypatch.setenv("BANDIT_WAREHOUSE_URL", "mysql://bob:hunter2@db/w")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://u:p@h:5432/d", "postgresql+psycopg://u:***@h:5432/d"),
        ("redis://:p@h:6379/0", "redis://:***@h:6379/0"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        ("sqlite:///.bandit/w.db", "sqlite:///.bandit/w.db"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_the_first_partition_is_chosen_at_installation():
    moment = datetime(2026, 12, 3, 6, 40, tzinfo=UTC)
    embedded = default_settings()
    assert embedded.partitions_start is None
    assert embedded.first_partition(moment) == "2026-12-02-00:00"  # yesterday, UTC
    production = default_settings(warehouse_url="postgresql+psycopg://u@db/bandit")
    with pytest.raises(SettingsError, match="BANDIT_PARTITIONS_START: required with a Postgre"):
        production.first_partition(moment)
    chosen = default_settings(
        warehouse_url="postgresql+psycopg://u@db/bandit", partitions_start="2026-12-01-09:15"
    )
    assert chosen.first_partition(moment) == "2026-12-01-09:15"


SECRETS = {
    "BANDIT_WAREHOUSE_URL": ("postgresql+psycopg://bob:wh-s3cret@db:5432/w", "wh-s3cret"),
    "BANDIT_ONLINE_STORE_URL": ("redis://:redis-s3cret@cache:6379/0", "redis-s3cret"),
    "BANDIT_ALERT_WEBHOOK_URL": ("https://hooks.example.com/T000/B000/hook-s3cret", "hook-s3cret"),
}


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
@pytest.mark.parametrize("bad", ["inf", "nan", "1e400", "-1", "x\n", "{}"])
def test_no_validation_error_shows_a_secret(monkeypatch, field, bad):
    for variable, (value, _) in SECRETS.items():
        monkeypatch.setenv(variable, value)
    variable = f"BANDIT_{field.upper()}"
    monkeypatch.setenv(variable, bad if variable not in SECRETS else bad + "://u:hunter2@h/d")
    try:
        shown = repr(load_settings())  # a value the field accepts: the repr must not leak
    except SettingsError as exc:
        shown = str(exc)
        assert variable in shown
    for secret in [s for _, s in SECRETS.values()] + ["hunter2"]:
        assert secret not in shown


def test_all_weights_zero_names_the_rule_not_the_input(monkeypatch):
    for variable, (value, _) in SECRETS.items():
        monkeypatch.setenv(variable, value)
    for kind in ("CLICK", "ADD_TO_CART", "PURCHASE"):
        monkeypatch.setenv(f"BANDIT_REWARD_WEIGHT_{kind}", "0")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "at least one BANDIT_REWARD_WEIGHT_* must be positive" in str(error.value)
    assert not any(secret in str(error.value) for _, secret in SECRETS.values())


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BANDIT_HALF_LIFE_DAYS", "inf"),
        ("BANDIT_REWARD_WEIGHT_PURCHASE", "inf"),
        ("BANDIT_REWARD_WEIGHT_CLICK", "nan"),
        ("BANDIT_ATTRIBUTION_WINDOW_HOURS", "1e400"),
        ("BANDIT_PRIOR_ALPHA", "1e300"),
        ("BANDIT_POOL_MAX_PRICE_RATIO", "inf"),
        ("BANDIT_KILLSWITCH_THRESHOLD", "inf"),
        ("BANDIT_NAMESPACE", "default\n"),
        ("BANDIT_SURFACES", "home,p\ndp"),
    ],
)
def test_numbers_are_finite_and_in_range_and_names_match_in_full(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_serve_prints_no_secret_on_bad_settings(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, **{v: value for v, (value, _) in SECRETS.items()},
           "BANDIT_REWARD_WEIGHT_CLICK": "0", "BANDIT_REWARD_WEIGHT_ADD_TO_CART": "0",
           "BANDIT_REWARD_WEIGHT_PURCHASE": "0"}  # fmt: skip
    result = subprocess.run(
        [str(Path(sys.executable).parent / "bandit-pipeline"), "serve", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "must be positive" in result.stderr
    for _, secret in SECRETS.values():
        assert secret not in result.stdout + result.stderr


def test_the_empirical_prior_is_refused_on_a_spark_warehouse_when_the_settings_load():
    with pytest.raises(SettingsError) as error:
        load_settings(warehouse_url="spark://local[2]?warehouse=/tmp/lake", prior_mode="empirical")
    assert "BANDIT_PRIOR_MODE=empirical: not available on a spark:// warehouse" in str(error.value)
    fixed = load_settings(warehouse_url="spark://local[2]?warehouse=/tmp/lake", prior_mode="fixed")
    assert fixed.warehouse_engine == "spark"
