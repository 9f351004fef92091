"""The warehouse resource: connection and posterior settings, editable in the launchpad."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import timedelta

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine

from bandit_pipeline.monitoring.alerts import AlertThresholds
from bandit_pipeline.monitoring.killswitch import KillSwitchPolicy
from bandit_pipeline.online_store import OnlineStore, open_store
from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.pool import PoolParameters
from bandit_pipeline.settings import Settings, default_settings
from bandit_pipeline.warehouse import make_engine

_DESIGN = default_settings().posterior_parameters()
_POOL_DEFAULTS = default_settings().pool_parameters()


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse is and the parameters of the posterior definition.

    The parameter fields carry the names and defaults of :class:`PosteriorParameters`
    (Dagster config wants them flat), and :meth:`from_settings` fills them from the
    BANDIT_* settings.
    """

    url: str
    weight_click: float = _DESIGN.weight_click
    weight_add_to_cart: float = _DESIGN.weight_add_to_cart
    weight_purchase: float = _DESIGN.weight_purchase
    prior_alpha: float = _DESIGN.prior_alpha
    prior_beta: float = _DESIGN.prior_beta
    half_life_days: float = _DESIGN.half_life_days
    attribution_window_hours: float = _DESIGN.attribution_window_hours
    train_on_all_impressions: bool = _DESIGN.train_on_all_impressions
    # How far ingestion lets producers' clocks run ahead (BANDIT_MAX_CLOCK_SKEW_SECONDS).
    max_clock_skew_seconds: float = 3600.0

    _engine: Engine | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseResource:
        return cls(
            url=settings.warehouse_url,
            max_clock_skew_seconds=settings.max_clock_skew_seconds,
            **asdict(settings.posterior_parameters()),
        )

    @property
    def future_scan(self) -> timedelta:
        return timedelta(seconds=self.max_clock_skew_seconds)

    @property
    def parameters(self) -> PosteriorParameters:
        return PosteriorParameters(
            **{f.name: getattr(self, f.name) for f in fields(PosteriorParameters)}
        )

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()


class CandidatePoolResource(dg.ConfigurableResource):
    """Which items may be explored: namespace, surfaces and the eligibility thresholds."""

    namespace: str = "default"
    surfaces: list[str] = list(_POOL_DEFAULTS.surfaces)
    min_freshness: float = _POOL_DEFAULTS.min_freshness
    min_availability: float = _POOL_DEFAULTS.min_availability
    max_price_ratio: float = _POOL_DEFAULTS.max_price_ratio
    graduation_impressions: float = _POOL_DEFAULTS.graduation_impressions

    @classmethod
    def from_settings(cls, settings: Settings) -> CandidatePoolResource:
        params = settings.pool_parameters()
        return cls(
            namespace=settings.namespace, **{**asdict(params), "surfaces": list(params.surfaces)}
        )

    @property
    def parameters(self) -> PoolParameters:
        return PoolParameters(
            surfaces=tuple(self.surfaces),
            min_freshness=self.min_freshness,
            min_availability=self.min_availability,
            max_price_ratio=self.max_price_ratio,
            graduation_impressions=self.graduation_impressions,
        )


class OnlineStoreResource(dg.ConfigurableResource):
    """Where snapshots are published: redis://... or sqlite:///..."""

    url: str
    prefix: str = "bandit"

    @classmethod
    def from_settings(cls, settings: Settings) -> OnlineStoreResource:
        return cls(url=settings.online_store_url, prefix=settings.online_store_prefix)

    def open(self) -> OnlineStore:
        # The publisher is not on the serving path: give it a generous timeout.
        return open_store(self.url, prefix=self.prefix, timeout_seconds=10.0)


class MonitoringResource(dg.ConfigurableResource):
    """Alert and kill-switch thresholds, the webhook, and the experiment's holdout."""

    alert_ctr_ratio: float = 0.5
    alert_min_explore_impressions: int = 200
    webhook_url: str | None = None
    killswitch_mode: str = "relative"
    killswitch_threshold: float = 0.25
    killswitch_min_explore_impressions: int = 500
    experiment_name: str | None = None
    experiment_holdout_percent: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> MonitoringResource:
        return cls(
            alert_ctr_ratio=settings.alert_ctr_ratio,
            alert_min_explore_impressions=settings.alert_min_explore_impressions,
            webhook_url=settings.alert_webhook_url,
            killswitch_mode=settings.killswitch_mode,
            killswitch_threshold=settings.killswitch_threshold,
            killswitch_min_explore_impressions=settings.killswitch_min_explore_impressions,
            experiment_name=settings.experiment_name if settings.experiment_enabled else None,
            experiment_holdout_percent=settings.experiment_holdout_percent,
        )

    def thresholds(self) -> AlertThresholds:
        return AlertThresholds(self.alert_ctr_ratio, self.alert_min_explore_impressions)

    def policy(self) -> KillSwitchPolicy:
        return KillSwitchPolicy(
            self.killswitch_mode, self.killswitch_threshold, self.killswitch_min_explore_impressions
        )

    def experiment(self) -> tuple[str, float] | None:
        if self.experiment_name is None:
            return None
        return self.experiment_name, self.experiment_holdout_percent
