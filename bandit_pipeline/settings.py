"""One settings object for every ``BANDIT_*`` knob.

Every value can be set through an environment variable named ``BANDIT_`` + the field
name in upper case (``BANDIT_HALF_LIFE_DAYS=7``). Invalid values fail at start-up with
:class:`SettingsError`, whose message names the variable.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL

from bandit_pipeline.identifiers import NAME_RULE, is_name
from bandit_pipeline.monitoring.alerts import AlertThresholds
from bandit_pipeline.monitoring.killswitch import KillSwitchPolicy
from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.policy.prior import PriorFitParameters
from bandit_pipeline.pool import PoolParameters
from bandit_pipeline.redact import redact_url, redact_webhook
from bandit_pipeline.report.criteria import WideningThresholds
from bandit_pipeline.timing import PARTITION_FORMAT

ENV_PREFIX = "BANDIT_"
DEFAULT_HOME = Path(".bandit")


class SettingsError(ValueError):
    """A ``BANDIT_*`` variable holds a value the product cannot run with."""


class Settings(BaseSettings):
    """Configuration of the pipeline, the online store and serving."""

    # Every number finite (no inf or nan) and inside the range its field states.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, allow_inf_nan=False
    )

    # Where things live.
    warehouse_url: str = Field(
        default=f"sqlite:///{DEFAULT_HOME}/warehouse.db",
        description="SQLAlchemy URL of the warehouse, e.g. postgresql+psycopg://u@host/db.",
    )
    online_store_url: str = Field(
        default=f"sqlite:///{DEFAULT_HOME}/online_store.db",
        description="redis://host:6379/0, redis+cluster://host:port,host:port/ (Redis "
        "Cluster) or sqlite:///path of the online store.",
    )
    namespace: str = Field(default="default", description="Tenant scope of this deployment.")

    # Rewards and posteriors (docs/posterior.md).
    reward_weight_click: float = Field(default=1.0, ge=0, le=1_000)
    reward_weight_add_to_cart: float = Field(default=3.0, ge=0, le=1_000)
    reward_weight_purchase: float = Field(default=5.0, ge=0, le=1_000)
    prior_alpha: float = Field(default=1.0, gt=0, le=1_000_000)
    prior_beta: float = Field(default=1.0, gt=0, le=1_000_000)
    prior_mode: Literal["fixed", "empirical"] = Field(
        default="fixed",
        description="fixed: every new item starts at Beta(prior_alpha, prior_beta); "
        "empirical: at a Beta fitted per surface to its well-explored items (docs/posterior.md).",
    )
    prior_max_strength: float = Field(
        default=20.0,
        ge=1,
        le=1_000,
        description="Empirical prior: cap on alpha0 + beta0, in impressions.",
    )
    prior_min_items: int = Field(
        default=10,
        ge=2,
        le=1_000_000,
        description="Empirical prior: fewer well-explored items on a surface, the fixed prior.",
    )
    prior_min_evidence: float = Field(
        default=50.0,
        gt=0,
        le=1_000_000_000,
        description="Empirical prior: decayed trained impressions that make an item well explored.",
    )
    half_life_days: float = Field(default=14.0, gt=0, le=3_650)
    attribution_window_hours: float = Field(default=24.0, gt=0, le=720)
    train_on_all_impressions: bool = Field(
        default=False,
        description="Train on every treatment impression of an item, not only explore=true.",
    )

    # The Dagster project.
    partitions_start: str | None = Field(
        default=None,
        description="First 15-minute partition (UTC), format YYYY-MM-DD-HH:MM: the first "
        "window the deployment processes. Required with a PostgreSQL warehouse; unset on the "
        "embedded SQLite default, the start of yesterday (UTC).",
    )

    # Ingestion.
    ingest_batch_size: int = Field(default=50_000, ge=1, le=1_000_000)
    # The posterior job also looks this far back before each window for impressions dated
    # ahead of the warehouse clock; raising it later calls for a backfill. At most a day.
    max_clock_skew_seconds: float = Field(
        default=3600.0,
        ge=0,
        le=86_400,
        description="Events dated further than this into the future are rejected.",
    )
    # A Spark lake has no unique index: an ingest skips the event_ids that batches ingested
    # this far back already hold (docs/spark.md). Each batch reads the event_ids of this
    # many hours of the lake.
    lake_dedup_horizon_hours: float = Field(
        default=48.0,
        gt=0,
        le=24 * 400,
        description="On a Spark warehouse, how far back an ingest looks for event_ids it "
        "already holds.",
    )

    # Candidate pool: which items may be explored, per surface.
    surfaces: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["home", "pdp", "cart"],
        description="Surfaces that get a candidate pool and a published snapshot.",
    )
    pool_min_freshness: float = Field(default=0.5, ge=0, le=1)
    pool_min_availability: float = Field(default=0.2, ge=0, le=1)
    pool_max_price_ratio: float = Field(
        default=5.0,
        gt=1,
        le=1_000,
        description="Price above this multiple of the category median: absurd.",
    )
    pool_graduation_impressions: float = Field(
        default=500.0,
        gt=0,
        le=1_000_000_000,
        description="Decayed trained impressions after which an item leaves exploration.",
    )

    # Online store and serving (docs/serving.md).
    online_store_prefix: str = Field(default="bandit", description="Key prefix in Redis.")
    online_store_timeout_ms: float = Field(
        default=50.0, gt=0, le=10_000, description="Per-call timeout of the serving path."
    )
    online_store_spin_us: float = Field(
        default=200.0,
        ge=0,
        le=10_000,
        description="How long the exposure read polls for Redis's answer before blocking.",
    )
    snapshot_refresh_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="How often serving polls for a new snapshot."
    )
    exploration_enabled: bool = Field(
        default=False,
        description="Fallback of the bandit_exploration_enabled flag when the store has none.",
    )
    explore_slots: int = Field(
        default=1, ge=1, le=2, description="Fallback of the bandit_explore_slots flag."
    )
    explore_traffic_percent: float = Field(
        default=100.0,
        ge=0,
        le=100,
        description="Fallback of the bandit_explore_traffic_percent flag: the share of users "
        "(by a stable hash) that get exploration, for a rollout in steps.",
    )
    explore_slot_positions: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [2, 5],
        description="Zero-based positions of the exploration slots in the response.",
    )
    decisions_table: bool = Field(
        default=False,
        description="Also append every decision trace to the warehouse table bandit_decisions.",
    )
    policy_id: str = Field(default="thompson-beta-v3", description="Stamped on every decision.")
    metric_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces besides BANDIT_NAMESPACE that label serving metrics; "
        "requests for any other namespace are counted under 'other'.",
    )
    max_request_items: int = Field(default=500, ge=1, le=10_000)
    max_request_bytes: int = Field(
        default=1_048_576,
        ge=1_024,
        le=67_108_864,
        description="Request bodies above this size are refused with 413 before parsing.",
    )

    # Monitoring and controls (docs/monitoring.md).
    alert_ctr_ratio: float = Field(
        default=0.5, gt=0, le=1, description="Alert when explore CTR < this share of baseline."
    )
    alert_min_explore_impressions: int = Field(
        default=200, ge=1, description="Explore impressions an hour needs before it can alert."
    )
    alert_webhook_url: str | None = Field(
        default=None, description="Slack-compatible webhook that receives new alerts."
    )
    killswitch_mode: Literal["relative", "absolute"] = Field(
        default="relative",
        description="relative: explore reward per impression against baseline's; absolute: alone.",
    )
    killswitch_threshold: float = Field(
        default=0.25, ge=0, le=1_000, description="Trip below this (share of baseline, or reward)."
    )
    killswitch_min_explore_impressions: int = Field(
        default=500, ge=1, description="Explore impressions an hour needs before it can trip."
    )

    # Controlled experiment (docs/serving.md and docs/monitoring.md).
    experiment_enabled: bool = False
    experiment_name: str = "bandit_exploration"
    experiment_holdout_percent: float = Field(default=10.0, ge=0, le=100)
    experiment_surfaces: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Widening the rollout: the success criteria of `bandit-pipeline report` (docs/report.md).
    widen_min_hours: int = Field(
        default=48,
        ge=1,
        le=8_760,
        description="Hours with exploration the report's range needs: two full daily cycles.",
    )
    widen_min_explore_impressions: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000_000_000,
        description="Explore impressions the report's range needs (48 hours at the alert's "
        "minimum of 200 an hour).",
    )
    widen_min_srm_p_value: float = Field(
        default=0.001,
        ge=0,
        le=1,
        description="A sample-ratio-mismatch p-value below this on any surface fails the range.",
    )
    widen_max_core_metric_drop: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Fail when a core metric of treatment is surely worse than control's by "
        "more than this share (the 95% interval of treatment / control - 1 lies below -it).",
    )

    @field_validator("namespace", "experiment_name", "online_store_prefix", "policy_id")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not is_name(value):
            raise ValueError(f"use {NAME_RULE}")
        return value

    @field_validator("partitions_start")
    @classmethod
    def _partition_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            moment = datetime.strptime(value, PARTITION_FORMAT)
        except ValueError:
            raise ValueError("expected YYYY-MM-DD-HH:MM") from None
        if moment.minute % 15:
            raise ValueError("must fall on a 15-minute boundary")
        return value

    @field_validator("surfaces")
    @classmethod
    def _surface_names(cls, value: list[str]) -> list[str]:
        if not value or any(not is_name(name) for name in value):
            raise ValueError("give one or more surface names, e.g. home,pdp,cart")
        return value

    @field_validator("explore_slot_positions", mode="before")
    @classmethod
    def _split_positions(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("explore_slot_positions")
    @classmethod
    def _two_distinct_positions(cls, value: list[int]) -> list[int]:
        if len(value) < 2 or len(set(value)) != len(value) or min(value) < 0:
            raise ValueError("give two or more distinct positions >= 0, e.g. 2,5")
        return sorted(value)

    @field_validator("experiment_surfaces", "metric_namespaces")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        if any(not is_name(name) for name in value):
            raise ValueError(f"each name must be {NAME_RULE}")
        return value

    @field_validator("experiment_surfaces", "surfaces", "metric_namespaces", mode="before")
    @classmethod
    def _split_surfaces(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("warehouse_url")
    @classmethod
    def _warehouse_dialect(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "spark://")):
            raise ValueError(
                "expected a sqlite:///, postgresql+psycopg:// or spark://MASTER?warehouse=DIR URL"
            )
        return value

    @field_validator("online_store_url")
    @classmethod
    def _store_scheme(cls, value: str) -> str:
        schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        if not value.startswith((*schemes, "sqlite:///")):
            raise ValueError(
                "expected a redis://, rediss://, unix://, redis+cluster://host:port,... "
                "or sqlite:/// URL"
            )
        return value

    @model_validator(mode="after")
    def _some_reward(self) -> Settings:
        if self.max_reward_weight <= 0:
            raise ValueError("at least one BANDIT_REWARD_WEIGHT_* must be positive")
        return self

    @model_validator(mode="after")
    def _prior_on_the_engine(self) -> Settings:
        # Said when the settings load, not hours later in a scheduled run's step.
        if self.prior_mode == "empirical" and self.warehouse_engine == "spark":
            raise ValueError(
                "BANDIT_PRIOR_MODE=empirical: not available on a spark:// warehouse yet; "
                "use fixed (docs/spark.md)"
            )
        return self

    @property
    def reward_weights(self) -> dict[str, float]:
        """Weight of each outcome event type."""
        return self.posterior_parameters().reward_weights

    def posterior_parameters(self) -> PosteriorParameters:
        """The settings the posterior numbers depend on (docs/posterior.md)."""
        return PosteriorParameters(
            weight_click=self.reward_weight_click,
            weight_add_to_cart=self.reward_weight_add_to_cart,
            weight_purchase=self.reward_weight_purchase,
            prior_alpha=self.prior_alpha,
            prior_beta=self.prior_beta,
            half_life_days=self.half_life_days,
            attribution_window_hours=self.attribution_window_hours,
            train_on_all_impressions=self.train_on_all_impressions,
        )

    def prior_fit_parameters(self) -> PriorFitParameters:
        """Which prior new items get, and how the empirical one is fitted."""
        return PriorFitParameters(
            mode=self.prior_mode,
            max_strength=self.prior_max_strength,
            min_items=self.prior_min_items,
            min_evidence=self.prior_min_evidence,
        )

    def pool_parameters(self) -> PoolParameters:
        """Which items may be explored on which surfaces."""
        return PoolParameters(
            surfaces=tuple(self.surfaces),
            min_freshness=self.pool_min_freshness,
            min_availability=self.pool_min_availability,
            max_price_ratio=self.pool_max_price_ratio,
            graduation_impressions=self.pool_graduation_impressions,
        )

    def alert_thresholds(self) -> AlertThresholds:
        """When the exploration-CTR alert opens (docs/monitoring.md)."""
        return AlertThresholds(self.alert_ctr_ratio, self.alert_min_explore_impressions)

    def killswitch_policy(self) -> KillSwitchPolicy:
        """When the kill switch trips (docs/monitoring.md)."""
        return KillSwitchPolicy(
            self.killswitch_mode, self.killswitch_threshold, self.killswitch_min_explore_impressions
        )

    def widening_thresholds(self) -> WideningThresholds:
        """When the report calls a range good enough to widen the rollout (docs/report.md)."""
        return WideningThresholds(
            self.widen_min_hours,
            self.widen_min_explore_impressions,
            self.widen_min_srm_p_value,
            self.widen_max_core_metric_drop,
        )

    def first_partition(self, now: datetime | None = None) -> str:
        """The key of the first 15-minute partition (``BANDIT_PARTITIONS_START``).

        A deployment sets it to the first window it means to process, so the UI shows no
        month of "missing" partitions before the install; the embedded default, for trying
        the product out, starts at yesterday's midnight (UTC), which holds the demo's
        windows."""
        if self.partitions_start is not None:
            return self.partitions_start
        if not self.warehouse_url.startswith("sqlite"):
            raise SettingsError(
                "BANDIT_PARTITIONS_START: required with a PostgreSQL warehouse; set it to the "
                "first 15-minute window to process (YYYY-MM-DD-HH:MM, UTC), for example the "
                "day of the installation: earlier windows would show as missing work"
            )
        today = (now or datetime.now(UTC)).date()
        return (datetime.combine(today, time(), UTC) - timedelta(days=1)).strftime(PARTITION_FORMAT)

    @property
    def warehouse_engine(self) -> Literal["postgresql", "sqlite", "spark"]:
        """Which engine the warehouse URL names."""
        if self.warehouse_url.startswith("spark://"):
            return "spark"
        return "sqlite" if self.warehouse_url.startswith("sqlite") else "postgresql"

    @property
    def lake_dedup_horizon(self) -> timedelta:
        """How far back a Spark ingest looks for the event_ids it already holds."""
        return timedelta(hours=self.lake_dedup_horizon_hours)

    @property
    def max_clock_skew(self) -> timedelta:
        """How far producers' clocks may run ahead: ingestion's limit, the job's reach."""
        return timedelta(seconds=self.max_clock_skew_seconds)

    @property
    def max_reward_weight(self) -> float:
        return max(
            self.reward_weight_click, self.reward_weight_add_to_cart, self.reward_weight_purchase
        )

    def __repr_args__(self):  # never show credentials in logs or tracebacks
        for name, value in super().__repr_args__():
            if name == "alert_webhook_url":
                value = redact_webhook(value)
            yield name, redact_url(value) if name and name.endswith("_url") else value


class DagsterInstanceSettings(BaseSettings):
    """Where the deployment's Dagster instance keeps runs, events and schedules: the
    ``DAGSTER_PG_*`` variables, or the whole URL in ``DAGSTER_PG_URL``."""

    model_config = SettingsConfigDict(env_prefix="DAGSTER_PG_", extra="ignore")

    url: str | None = Field(default=None, description="The whole URL; wins over the parts.")
    host: str | None = None
    port: int = Field(default=5432, ge=1, le=65_535)
    user: str | None = None
    password: str = Field(default="", description="Empty for trust or peer authentication.")
    db: str | None = None
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = (
        None
    )

    def storage_url(self) -> str:
        """The SQLAlchemy URL of the instance database (psycopg2, which Dagster's storage
        needs); a missing part is named by its variable."""
        if self.url:
            return self.url
        missing = [f"DAGSTER_PG_{name.upper()}" for name in ("host", "user", "db")
                   if not getattr(self, name)]  # fmt: skip
        if missing:
            raise SettingsError(
                f"the Dagster instance needs {', '.join(missing)} (or DAGSTER_PG_URL)"
            )
        url = URL.create(
            "postgresql+psycopg2",
            username=self.user,
            password=self.password or None,
            host=self.host,
            port=self.port,
            database=self.db,
            query={"sslmode": self.sslmode} if self.sslmode else {},
        )
        return url.render_as_string(hide_password=False)

    def __repr_args__(self):  # never show credentials in logs or tracebacks
        for name, value in super().__repr_args__():
            if name == "password" and value:
                value = "***"
            yield name, redact_url(value) if name == "url" else value


def load_instance_settings() -> DagsterInstanceSettings:
    """The ``DAGSTER_PG_*`` variables, with one message naming each offending one."""
    try:
        return DagsterInstanceSettings()
    except ValidationError as exc:
        problems = [
            f"DAGSTER_PG_{str(error['loc'][0]).upper()}: {error['msg']}" for error in exc.errors()
        ]
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from None


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment, turning validation errors into one message
    that names each offending variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors()]
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from None


def _problem(error: ErrorDetails) -> str:
    """One line naming the variable, quoting its value only when that can hold no secret:
    URLs redacted, an error of the whole object (all weights 0, say) without the input."""
    field = str(error["loc"][0]) if error["loc"] else ""
    if not field:
        return f"BANDIT_* settings: {error['msg']}"
    shown = error.get("input")
    if field.endswith("_url") and isinstance(shown, str):  # never show credentials
        shown = redact_webhook(shown) if field == "alert_webhook_url" else redact_url(shown)
    excerpt = ascii(shown)
    excerpt = excerpt if len(excerpt) <= 80 else excerpt[:77] + "..."
    return f"{ENV_PREFIX}{field.upper()}: {error['msg']} (got {excerpt})"


def default_settings(**overrides: object) -> Settings:
    """The documented defaults with ``overrides``, whatever the environment holds: for
    tests, benchmarks and tools that must not depend on a caller's ``BANDIT_*`` variables."""
    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in Settings.model_fields.items()
    }
    return load_settings(**{**defaults, **overrides})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
