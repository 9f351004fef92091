"""The HTTP service over the decision path (FastAPI on uvicorn): ``bandit-pipeline serve``.

``POST /v1/decide`` returns the response with exploration items injected; ``/healthz``
says whether the process and the online store are fine; ``/metrics`` is Prometheus text.
Bad input is a 422 naming the field (with at most a short, escaped excerpt of the value),
a body above ``BANDIT_MAX_REQUEST_BYTES`` a 413 before it is parsed; an unexpected error
inside the decision still returns the ranker's items (reason ``internal_error``), never a
500. Names and ids follow the product's one rule (``bandit_pipeline.identifiers``).
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from bandit_pipeline.identifiers import MAX_ID_LENGTH, NAME_REGEX, NAME_RULE, id_problem, is_name
from bandit_pipeline.online_store import StoreUnavailable
from bandit_pipeline.serving.metrics import REGISTRY
from bandit_pipeline.serving.service import DecisionRequest, DecisionTrace, ExplorationService
from bandit_pipeline.settings import Settings

log = logging.getLogger(__name__)


def _date_time_text(value: object) -> object:
    """The schema says an ISO 8601 string: a number (which pydantic would read as Unix
    seconds) is refused rather than guessed at."""
    if not isinstance(value, str):
        raise ValueError("an ISO 8601 date-time string with its UTC offset")
    return value


DecisionTime = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]


def _name(value: str) -> str:
    if not is_name(value):
        raise ValueError(f"expected {NAME_RULE}")
    return value


def _id(value: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# The schema shows the rule (for clients and schemathesis); the validators enforce it.
Name = Annotated[str, StringConstraints(pattern=f"^{NAME_REGEX}$"), AfterValidator(_name)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(_id)]
MAX_CANDIDATES = 10_000
EXCERPT = 40  # characters of a bad value quoted back, escaped


def _error(error: dict) -> dict:
    """A validation error naming the field, with a short, escaped excerpt of the value
    (never the whole input: a 10 MB body must not come back as a 10 MB answer)."""
    shown = {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")),
             "type": str(error.get("type", ""))}  # fmt: skip
    value = error.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        shown["input"] = ascii(value if not isinstance(value, str) else value[:EXCERPT])
    return shown


class BodyLimit:
    """ASGI middleware: a body above ``limit`` bytes is refused with 413 before parsing,
    whether it declares its length or streams it (it is read, up to the limit, first)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: disconnects and the like
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        body = orjson.dumps({"detail": f"request body larger than {self.limit} bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


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

        namespace: Name = settings.namespace
        surface: Name
        user_id: Id
        request_id: Id
        items: Annotated[list[Id], Field(max_length=settings.max_request_items)]
        candidates: Annotated[list[Id], Field(max_length=MAX_CANDIDATES)] | None = None
        decided_at: DecisionTime | None = Field(
            default=None,
            description="When the decision happens (replays, simulations); default: now.",
        )

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
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [_error(e) for e in exc.errors()]})

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
