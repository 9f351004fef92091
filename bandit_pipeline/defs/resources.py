"""The warehouse resource: connection and posterior settings, editable in the launchpad."""

from __future__ import annotations

from functools import cached_property

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine

from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.settings import Settings
from bandit_pipeline.warehouse import make_engine


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse is and the parameters of the posterior definition."""

    url: str
    reward_weight_click: float = 1.0
    reward_weight_add_to_cart: float = 3.0
    reward_weight_purchase: float = 5.0
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    half_life_days: float = 14.0
    attribution_window_hours: float = 24.0
    train_on_all_impressions: bool = False

    _engine: Engine | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseResource:
        params = settings.posterior_parameters()
        return cls(
            url=settings.warehouse_url,
            reward_weight_click=params.weight_click,
            reward_weight_add_to_cart=params.weight_add_to_cart,
            reward_weight_purchase=params.weight_purchase,
            prior_alpha=params.prior_alpha,
            prior_beta=params.prior_beta,
            half_life_days=params.half_life_days,
            attribution_window_hours=params.attribution_window_hours,
            train_on_all_impressions=params.train_on_all_impressions,
        )

    @cached_property
    def parameters(self) -> PosteriorParameters:
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

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
