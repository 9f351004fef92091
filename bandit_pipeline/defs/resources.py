"""The warehouse resource: connection and posterior settings, editable in the launchpad."""

from __future__ import annotations

from dataclasses import asdict, fields

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine

from bandit_pipeline.policy import PosteriorParameters
from bandit_pipeline.settings import Settings
from bandit_pipeline.warehouse import make_engine


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse is and the parameters of the posterior definition.

    The parameter fields carry the names of :class:`PosteriorParameters`; their defaults
    are DESIGN.md's, and :meth:`from_settings` fills them from the BANDIT_* settings.
    """

    url: str
    weight_click: float = 1.0
    weight_add_to_cart: float = 3.0
    weight_purchase: float = 5.0
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    half_life_days: float = 14.0
    attribution_window_hours: float = 24.0
    train_on_all_impressions: bool = False

    _engine: Engine | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseResource:
        return cls(url=settings.warehouse_url, **asdict(settings.posterior_parameters()))

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
