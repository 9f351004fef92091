"""A failed step says why in one line: the warehouse unreachable, its connection lost, the
online store down. Without this the cause (a PostgreSQL restart, say) sits deep in a
driver traceback inside hundreds of lines of run log. ``step_failure_line`` reads that
line back from a step's failure event, for whoever reports it (a local run's error, a
retried run's reason)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import dagster as dg
from sqlalchemy.exc import DBAPIError

from bandit_pipeline.online_store import StoreUnavailable
from bandit_pipeline.warehouse.engine import warehouse_failure

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def named_failures(step: str) -> Iterator[None]:
    """Turn a warehouse or online-store failure inside ``step`` into a Dagster failure
    whose description names the cause (the original stays chained below it)."""
    try:
        yield
    except DBAPIError as exc:
        raise dg.Failure(description=f"{step}: warehouse {warehouse_failure(exc)}") from exc
    except StoreUnavailable as exc:
        raise dg.Failure(description=f"{step}: online store unavailable: {exc}") from exc


def explain_failures(fn: F) -> F:
    """:func:`named_failures` around a step function (generators too)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def steps(*args: Any, **kwargs: Any) -> Any:
            with named_failures(fn.__name__):
                yield from fn(*args, **kwargs)

        return steps  # type: ignore[return-value]

    @functools.wraps(fn)
    def step(*args: Any, **kwargs: Any) -> Any:
        with named_failures(fn.__name__):
            return fn(*args, **kwargs)

    return step  # type: ignore[return-value]


def step_failure_line(event: dg.DagsterEvent) -> str:
    """A failed step's one-line cause: its Failure's description (which names the step),
    else the step and the first line of its error."""
    data = event.step_failure_data
    user = data.user_failure_data
    if user is not None and user.description:
        return user.description
    message = data.error.message.strip().splitlines() if data.error else []
    return f"{event.step_key}: {message[0] if message else 'failed'}"
