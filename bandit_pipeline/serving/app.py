"""The HTTP service over the decision path (FastAPI on uvicorn): ``bandit-pipeline serve``.

``POST /v1/decide`` returns the response with exploration items injected; ``/healthz``
says whether the process and the online store are fine; ``/metrics`` is Prometheus text.
Bad input is a 422 naming the field; an unexpected error inside the decision still
returns the ranker's items (reason ``internal_error``), never a 500.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bandit_pipeline.online_store import StoreUnavailable
from bandit_pipeline.serving.metrics import REGISTRY
from bandit_pipeline.serving.service import DecisionRequest, DecisionTrace, ExplorationService
from bandit_pipeline.settings import Settings

log = logging.getLogger(__name__)

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MAX_CANDIDATES = 10_000


class ResponseItemModel(BaseModel):
    item_id: str
    slot: int
    explore: bool


class DecideResponse(BaseModel):
    items: list[ResponseItemModel]
    trace: dict


class Health(BaseModel):
    status: str
    store: str
    detail: str | None = None


def create_app(settings: Settings, service: ExplorationService | None = None) -> FastAPI:
    """The ASGI app; it owns ``service`` (made from ``settings`` when not given)."""

    class DecideRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        namespace: Name = "default"
        surface: Name
        user_id: Id
        request_id: Id
        items: Annotated[list[Id], Field(max_length=settings.max_request_items)]
        candidates: Annotated[list[Id], Field(max_length=MAX_CANDIDATES)] | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service or ExplorationService(settings)
        yield
        app.state.service.close()

    # /docs and /redoc serve Swagger UI and ReDoc from the package, not from a CDN: the
    # service usually runs where the internet is out of reach.
    app = FastAPIOffline(
        title="bandit exploration",
        version="1",
        description="Thompson-sampling exploration slots for recommendation responses.",
        lifespan=lifespan,
    )

    # Async on purpose: a decision is a few hundred microseconds of CPU and one store
    # command bounded by the store timeout, and after a store failure the breaker skips
    # the store entirely, so the event loop is never held long; the thread-pool hop of a
    # sync endpoint cost a third of the throughput.
    @app.post("/v1/decide", response_model=DecideResponse)
    async def decide(body: DecideRequest) -> DecideResponse:
        request = DecisionRequest(**body.model_dump())
        current: ExplorationService = app.state.service
        try:
            decision = current.decide(request)
            items = [ResponseItemModel(**item._asdict()) for item in decision.items]
            trace = vars(decision.trace)
        except Exception as exc:  # the recommendation must never fail because of us
            log.exception("decision failed; returning the ranker's items")
            items = [
                ResponseItemModel(item_id=i, slot=n, explore=False)
                for n, i in enumerate(request.items)
            ]
            trace = vars(
                DecisionTrace(
                    request.namespace, request.surface, request.user_id, request.request_id,
                    explored=False, reason="internal_error", policy_id=settings.policy_id,
                    experiment=None, variant=None, detail=type(exc).__name__,
                )
            )  # fmt: skip
        return DecideResponse(items=items, trace=trace)

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        try:
            app.state.service.store.ping()
        except StoreUnavailable as exc:
            return Health(status="degraded", store="unavailable", detail=str(exc))
        return Health(status="ok", store="ok")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
