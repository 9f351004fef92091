"""The resources: where the warehouse and the online store are, and the parameters the
assets and sensors run with, editable in the launchpad.

Every value comes from :class:`Settings` through ``from_settings``; no field has a default
of its own. Each parameter object of the product is one nested config, field for field.
The URLs, which may hold a password or a token, reach Dagster as the names of their
BANDIT_* variables (see :func:`_from_environment`).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from dataclasses import fields as dataclass_fields
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Self, get_args, get_origin, get_type_hints

import dagster as dg
from pydantic import PrivateAttr, create_model
from sqlalchemy import Engine

from bandit_pipeline.monitoring.alerts import AlertThresholds
from bandit_pipeline.monitoring.killswitch import KillSwitchPolicy
from bandit_pipeline.online_store import OnlineStore, open_store
from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.policy.prior import PriorFitParameters
from bandit_pipeline.pool import PoolParameters
from bandit_pipeline.settings import ENV_PREFIX, Settings
from bandit_pipeline.warehouse import make_engine

if TYPE_CHECKING:
    from bandit_pipeline.warehouse.spark import SparkWarehouse


def _from_environment(settings: Settings, name: str) -> str | dg.EnvVar | None:
    """The setting ``name``, as a reference to its BANDIT_* variable when that is where the
    value came from.

    Dagster shows resource config in its UI and stores it with every run. A reference is
    shown and stored as the variable's name and read only where the resource starts, so a
    URL's password or a webhook's token never reaches Dagster. A value given in code
    (tests, the demo) is passed as it is.
    """
    value = getattr(settings, name)
    variable = f"{ENV_PREFIX}{name.upper()}"
    if value is not None and os.environ.get(variable) == value:
        return dg.EnvVar(variable)
    return value


class ParametersConfig(dg.Config):
    """Dagster config that mirrors a frozen parameters dataclass field for field (lists
    here are its tuples); made by :func:`parameters_config`."""

    parameters_class: ClassVar[type]

    @classmethod
    def of(cls, parameters: Any) -> Self:
        return cls(**asdict(parameters))

    def parameters(self) -> Any:
        values = self.model_dump()
        return self.parameters_class(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        )


def parameters_config(parameters_class: type, name: str) -> type[ParametersConfig]:
    """The config class of a parameters dataclass, with its fields, types and docstring: the
    dataclass stays the one definition of which parameters exist."""
    hints = get_type_hints(parameters_class)
    fields: dict[str, Any] = {}
    for field in dataclass_fields(parameters_class):
        kind = hints[field.name]
        fields[field.name] = (list[get_args(kind)[0]] if get_origin(kind) is tuple else kind, ...)
    config = create_model(
        name, __base__=ParametersConfig, __doc__=parameters_class.__doc__, **fields
    )
    config.parameters_class = parameters_class
    return config


PosteriorConfig = parameters_config(PosteriorParameters, "PosteriorConfig")
PriorConfig = parameters_config(PriorFitParameters, "PriorConfig")
PoolConfig = parameters_config(PoolParameters, "PoolConfig")
AlertConfig = parameters_config(AlertThresholds, "AlertConfig")
KillSwitchConfig = parameters_config(KillSwitchPolicy, "KillSwitchConfig")


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse is and the parameters of the posterior definition."""

    url: str
    posterior: PosteriorConfig
    prior: PriorConfig
    # How far ingestion lets producers' clocks run ahead (BANDIT_MAX_CLOCK_SKEW_SECONDS).
    max_clock_skew_seconds: float

    _engine: Engine | None = PrivateAttr(default=None)
    _lake: Any = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseResource:
        return cls(
            url=_from_environment(settings, "warehouse_url"),
            posterior=PosteriorConfig.of(settings.posterior_parameters()),
            prior=PriorConfig.of(settings.prior_fit_parameters()),
            max_clock_skew_seconds=settings.max_clock_skew_seconds,
        )

    @property
    def future_scan(self) -> timedelta:
        return timedelta(seconds=self.max_clock_skew_seconds)

    @property
    def parameters(self) -> PosteriorParameters:
        return self.posterior.parameters()

    @property
    def prior_fit(self) -> PriorFitParameters:
        return self.prior.parameters()

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    @property
    def is_spark(self) -> bool:
        return self.url.startswith("spark://")

    def target(self) -> Engine | SparkWarehouse:
        """The engine, or the Spark warehouse of a ``spark://`` URL: for the steps that
        serve both."""
        return self.lake() if self.is_spark else self.engine()

    def lake(self) -> SparkWarehouse:
        """The Spark warehouse of a ``spark://`` URL (docs/spark.md), opened once per
        run: its Spark session lives as long as the run's process."""
        from bandit_pipeline.warehouse.spark import SparkWarehouse

        if self._lake is None:
            self._lake = SparkWarehouse.open(self.url)
        return self._lake

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()


class CandidatePoolResource(dg.ConfigurableResource):
    """Which items may be explored: the namespace, the surfaces and the thresholds."""

    namespace: str
    pool: PoolConfig

    @classmethod
    def from_settings(cls, settings: Settings) -> CandidatePoolResource:
        return cls(namespace=settings.namespace, pool=PoolConfig.of(settings.pool_parameters()))

    @property
    def parameters(self) -> PoolParameters:
        return self.pool.parameters()


class OnlineStoreResource(dg.ConfigurableResource):
    """Where snapshots are published: redis://... or sqlite:///..."""

    url: str
    prefix: str

    @classmethod
    def from_settings(cls, settings: Settings) -> OnlineStoreResource:
        return cls(
            url=_from_environment(settings, "online_store_url"),
            prefix=settings.online_store_prefix,
        )

    def open(self) -> OnlineStore:
        # The publisher is not on the serving path: give it a generous timeout.
        return open_store(self.url, prefix=self.prefix, timeout_seconds=10.0)


class MonitoringResource(dg.ConfigurableResource):
    """Alert and kill-switch thresholds, the webhook, and the experiment's holdout."""

    alert: AlertConfig
    killswitch: KillSwitchConfig
    webhook_url: str | None
    experiment_name: str | None  # None: no experiment runs
    experiment_holdout_percent: float

    @classmethod
    def from_settings(cls, settings: Settings) -> MonitoringResource:
        return cls(
            alert=AlertConfig.of(settings.alert_thresholds()),
            killswitch=KillSwitchConfig.of(settings.killswitch_policy()),
            webhook_url=_from_environment(settings, "alert_webhook_url"),
            experiment_name=settings.experiment_name if settings.experiment_enabled else None,
            experiment_holdout_percent=settings.experiment_holdout_percent,
        )

    def thresholds(self) -> AlertThresholds:
        return self.alert.parameters()

    def policy(self) -> KillSwitchPolicy:
        return self.killswitch.parameters()

    def experiment(self) -> tuple[str, float] | None:
        if self.experiment_name is None:
            return None
        return self.experiment_name, self.experiment_holdout_percent


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Every resource the assets, checks, sensors and jobs use, by key."""
    return {
        "warehouse": WarehouseResource.from_settings(settings),
        "candidate_pool": CandidatePoolResource.from_settings(settings),
        "online_store": OnlineStoreResource.from_settings(settings),
        "monitoring": MonitoringResource.from_settings(settings),
    }


def warehouse_kind(settings: Settings) -> str:
    """The kind tag of assets stored in the warehouse: postgresql, sqlite or spark."""
    return settings.warehouse_engine


def online_store_kind(settings: Settings) -> str:
    """The kind tag of assets stored in the online store: redis or sqlite."""
    return "sqlite" if settings.online_store_url.startswith("sqlite") else "redis"
