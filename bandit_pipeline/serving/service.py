"""The decision path: which exploration items go into a recommendation response.

Called in process by a recommendation service, or over HTTP (``serving.app``). It never
fails the recommendation: anything missing or down means the ranker's items unchanged,
with the reason in the trace.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from bandit_pipeline.flag_values import flag_fallbacks
from bandit_pipeline.online_store import OnlineStore, StoreRejected, StoreUnavailable, open_store
from bandit_pipeline.policy.experiment import CONTROL, assign_variant, in_rollout
from bandit_pipeline.policy.thompson import QuantileBounds, decision_rng
from bandit_pipeline.serving import metrics
from bandit_pipeline.serving.decision_log import DecisionTable
from bandit_pipeline.serving.exposure_guard import ExposureGuard, GuardedDecision
from bandit_pipeline.serving.flags import (
    ExplorationFlags,
    StoreFlagProvider,
    flag_client,
    release_flag_client,
)
from bandit_pipeline.serving.state import ServingSnapshot, ServingState
from bandit_pipeline.settings import Settings

decision_log = logging.getLogger("bandit_pipeline.decisions")


@dataclass(frozen=True)
class DecisionRequest:
    """One recommendation response to explore in: the ranker's ``items`` in order, and
    the candidates to explore among (None: the surface's published pool)."""

    namespace: str
    surface: str
    user_id: str
    request_id: str
    items: list[str]
    candidates: list[str] | None = None
    # When the decision happens: the exposure guard's hour and the trace count from it.
    # None is now; a replay or a simulation passes its own clock (naive means UTC).
    decided_at: datetime | None = None


class ResponseItem(NamedTuple):
    """One item of the response; ``explore`` marks an exploration item."""

    item_id: str
    slot: int
    explore: bool = False


@dataclass
class DecisionTrace:
    """Everything needed to audit a decision and recompute its propensities offline:
    ``thompson_top_k(alpha, beta, k, decision_rng(seed), excluded)`` over the candidates
    of the same snapshot version in snapshot order (or the request's candidates, first
    occurrences in order), excluding ``skipped_shown`` and ``skipped_recent``, gives the
    same draws and the same choice (docs/serving.md)."""

    namespace: str
    surface: str
    user_id: str
    request_id: str
    explored: bool
    reason: str
    policy_id: str
    experiment: str | None
    variant: str | None
    snapshot_version: str | None = None
    seed: int | None = None
    slots: int = 0
    explore_slots: list[int] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    eligible: int = 0
    skipped_recent: list[str] = field(default_factory=list)
    skipped_shown: list[str] = field(default_factory=list)
    detail: str | None = None
    decided_at: datetime | None = None

    def log_extra(self) -> dict[str, object]:
        """The ``extra`` of the decision's log record (docs/serving.md, "The trace")."""
        return {
            "bandit": dict(vars(self)),
            "explore_slot": self.explore_slots,
            "bandit_experiment": self.experiment,
            "bandit_variant": self.variant,
            "bandit_policy_id": self.policy_id,
            "bandit_snapshot_version": self.snapshot_version,
            "bandit_seed": self.seed,
        }


@dataclass(frozen=True)
class DecisionResponse:
    """The response's items (the ranker's length) and the decision's trace."""

    items: list[ResponseItem]
    trace: DecisionTrace


class ExplorationService:
    """Thompson-sampling exploration slots over the published snapshots.

    With ``background=False`` no thread is started: snapshots load on first use and
    change only on ``state.refresh()``, and queued exposures reach the store with the
    next decision's read on Redis, or on ``flush_exposures()`` / ``close()`` (always so
    on SQLite, whose reads carry no writes). Tests and one-shot callers use it; a
    serving process keeps the threads.
    """

    def __init__(
        self,
        settings: Settings,
        store: OnlineStore | None = None,
        *,
        seed_source: np.random.Generator | None = None,
        background: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(
            settings.online_store_url,
            prefix=settings.online_store_prefix,
            timeout_seconds=settings.online_store_timeout_ms / 1000,
            spin_seconds=settings.online_store_spin_us / 1e6,
        )
        self.labels = metrics.LabelBounds(
            frozenset({settings.namespace, *settings.metric_namespaces}),
            frozenset({*settings.surfaces, *settings.experiment_surfaces}),
        )
        self.state = ServingState(
            self.store, refresh_seconds=settings.snapshot_refresh_seconds, labels=self.labels
        )
        provider = StoreFlagProvider(self.state.flags, flag_fallbacks(settings))
        self._flag_domain = f"bandit-{id(self)}"
        self.flag_client = flag_client(provider, domain=self._flag_domain)
        self.flags = ExplorationFlags(self.flag_client, self.state.flags)
        self._seed_source = seed_source
        self._prior = QuantileBounds.build(
            np.array([settings.prior_alpha]), np.array([settings.prior_beta])
        )
        self.exposure_guard = ExposureGuard(self.store)
        self.decisions = (
            DecisionTable.from_url(settings.warehouse_url) if settings.decisions_table else None
        )
        if background:
            self.state.start()
            self.exposure_guard.start()
            if self.decisions is not None:
                self.decisions.start()

    def flush_exposures(self) -> None:
        """Write the queued exposures now (a thread does it every 0.2 s)."""
        self.exposure_guard.flush()

    def close(self) -> None:
        """Stop the threads, write what is queued, release the store."""
        release_flag_client(self._flag_domain)
        self.state.stop()
        self.exposure_guard.close()
        if self.decisions is not None:
            self.decisions.close()
        self.store.close()

    def _seed(self) -> int:
        if self._seed_source is not None:
            return int(self._seed_source.integers(0, 2**63 - 1))
        return secrets.randbits(63)

    def _variant(self, request: DecisionRequest) -> tuple[str | None, str | None]:
        s = self.settings
        in_experiment = s.experiment_enabled and (
            not s.experiment_surfaces or request.surface in s.experiment_surfaces
        )
        if not in_experiment:
            return None, None
        variant = assign_variant(s.experiment_name, request.user_id, s.experiment_holdout_percent)
        return s.experiment_name, variant

    def decide(self, request: DecisionRequest) -> DecisionResponse:
        """The response with the exploration items injected, or the ranker's items
        unchanged when there is nothing to explore or the store fails (the trace says
        why)."""
        experiment, variant = self._variant(request)
        trace = DecisionTrace(
            namespace=request.namespace,
            surface=request.surface,
            user_id=request.user_id,
            request_id=request.request_id,
            explored=False,
            reason="explored",
            policy_id=self.settings.policy_id,
            experiment=experiment,
            variant=variant,
            decided_at=_decision_time(request.decided_at),
        )
        try:
            items = self._explore(request, trace)
        except StoreRejected as exc:  # this request's data, not the store: no breaker
            metrics.STORE_ERRORS.inc()
            trace.reason, trace.detail = "store_error", str(exc)
            items = None
        except StoreUnavailable as exc:
            domain = self.store.failure_domain(request.namespace, request.user_id)
            self.state.mark_store_down(exc, domain)  # counts the error too
            trace.reason, trace.detail = "store_unavailable", str(exc) or type(exc).__name__
            items = None
        if items is None:
            trace.explored = False
            items = _response(request.items, {})
        self._record(trace)
        return DecisionResponse(items, trace)

    def _explore(self, request: DecisionRequest, trace: DecisionTrace) -> list[ResponseItem] | None:
        """The injected response, or None with ``trace.reason`` saying why not."""
        if trace.variant == CONTROL:
            trace.reason = "control_group"
            return None
        enabled, slots, share, problem = self.flags.get(request.namespace, request.user_id)
        if problem is not None:
            trace.reason, trace.detail = "flags_unavailable", problem
            return None
        if not enabled:
            trace.reason = "exploration_disabled"
            return None
        if not in_rollout(request.user_id, share):
            trace.reason, trace.detail = "outside_rollout", f"rollout share {share:g}%"
            return None
        snapshot, killswitch = self.state.surface(request.namespace, request.surface)
        if killswitch is not None and killswitch.tripped:
            trace.reason, trace.detail = "kill_switch", killswitch.reason
            return None
        if snapshot is None:
            trace.reason = "no_snapshot"
            trace.detail = self.state.last_error
            return None
        trace.snapshot_version = snapshot.snapshot.version
        length = len(request.items)
        positions = [p for p in self.settings.explore_slot_positions[:slots] if p < length]
        if not positions:
            trace.reason = "response_too_short"
            trace.detail = (
                f"{length} items; exploration slots at {self.settings.explore_slot_positions}"
            )
            return None
        if self.state.store_down(self.store.failure_domain(request.namespace, request.user_id)):
            trace.reason, trace.detail = "store_unavailable", "skipped: the store failed recently"
            return None

        # The exposure read goes out now (with the queued writes it carries); the draws
        # and the choice in ``_choose`` overlap its round trip.
        guarded = self.exposure_guard.begin(request.namespace, request.user_id, trace.decided_at)
        try:
            return self._choose(request, trace, snapshot, slots, positions, guarded)
        finally:
            guarded.end()

    def _choose(
        self,
        request: DecisionRequest,
        trace: DecisionTrace,
        snapshot: ServingSnapshot,
        slots: int,
        positions: list[int],
        guarded: GuardedDecision,
    ) -> list[ResponseItem] | None:
        """Draw, choose, take the exposure read's answer, claim the choice, inject it."""
        # The draws do not depend on the exposure read's answer (the excluded items are
        # drawn too and then cannot win), so they overlap its round trip, and so does
        # the choice among the items not shown by the ranker: when the answer names none
        # of that choice's items it is the choice without them too.
        try:
            names, position, bounds = self._candidates(request, snapshot)
            trace.seed = self._seed()
            draws = bounds.sample(decision_rng(trace.seed))
            shown = [n for n in request.items if n in position]
            excluded = {position[n] for n in shown}
            chosen, scores = draws.top_k(len(positions), excluded)
        finally:
            recent = guarded.recent()
        if shown:
            trace.skipped_shown = shown
        recent_positions = {position[n] for n in recent if n in position}
        if recent_positions:
            trace.skipped_recent = sorted(names[i] for i in recent_positions)
            if not recent_positions.isdisjoint(chosen):
                chosen, scores = draws.top_k(len(positions), excluded | recent_positions)
            excluded |= recent_positions
        trace.eligible = len(names) - len(excluded)
        if trace.eligible <= 0:
            trace.reason = "no_eligible_candidates"
            return None
        while True:
            trace.chosen = [names[i] for i in chosen]
            taken = guarded.claim(tuple(trace.chosen))
            if not taken:
                break
            # Another thread of this process has just explored some of these for the same
            # user: they count as recently explored, and the slots go to the next best.
            trace.skipped_recent = sorted({*trace.skipped_recent, *taken})
            excluded |= {position[n] for n in taken}
            trace.eligible = len(names) - len(excluded)
            chosen, scores = draws.top_k(len(positions), excluded)
            if not chosen:
                trace.reason = "no_eligible_candidates"
                return None
        trace.scores = scores
        trace.slots = slots
        trace.explore_slots = positions[: len(trace.chosen)]
        trace.explored = True
        return _response(request.items, dict(zip(trace.explore_slots, trace.chosen, strict=True)))

    def _candidates(
        self, request: DecisionRequest, snapshot: ServingSnapshot
    ) -> tuple[Sequence[str], dict[str, int], QuantileBounds]:
        """The candidates in draw order with their positions and posteriors: the snapshot's
        pool in snapshot order, or the request's candidates (first occurrence, request
        order; the prior for items without a posterior)."""
        if request.candidates is None:
            return snapshot.snapshot.item_ids, snapshot.position, snapshot.bounds
        names = list(dict.fromkeys(request.candidates))
        get = snapshot.position.get
        in_snapshot = np.fromiter((get(name, -1) for name in names), np.intp, len(names))
        bounds = snapshot.bounds.subset(in_snapshot, self._prior)
        return names, {name: i for i, name in enumerate(names)}, bounds

    def _record(self, trace: DecisionTrace) -> None:
        outcome = "explored" if trace.explored else "not_explored"
        namespace, surface = self.labels(trace.namespace, trace.surface)
        metrics.decisions(namespace, surface, outcome, trace.reason).inc()
        if trace.explored:
            metrics.explore_impressions(namespace, surface).inc(len(trace.explore_slots))
        if decision_log.isEnabledFor(logging.INFO):
            # makeRecord + handle is logger.info without the caller lookup, which walks
            # the stack: a third of the cost of logging the trace.
            record = decision_log.makeRecord(
                decision_log.name, logging.INFO, __file__, 0, "bandit decision", (), None,
                extra=trace.log_extra(),
            )  # fmt: skip
            decision_log.handle(record)
        if self.decisions is not None:
            self.decisions.add(trace)


def _decision_time(given: datetime | None) -> datetime:
    if given is None:
        return datetime.now(UTC)
    return given.replace(tzinfo=UTC) if given.tzinfo is None else given.astimezone(UTC)


_item = ResponseItem._make  # tuple.__new__: half the cost of the NamedTuple's own __new__


def _response(ranked: Sequence[str], explore_at: dict[int, str]) -> list[ResponseItem]:
    """Exploration items at their slots; the ranker's items fill the rest in order, and
    the response keeps the ranker's length."""
    item_ids = list(ranked)
    for slot in sorted(explore_at):  # ascending: each lands at its own slot
        item_ids.insert(slot, explore_at[slot])
    slots = range(len(ranked))
    del item_ids[len(ranked) :]
    explore = [slot in explore_at for slot in slots]
    return list(map(_item, zip(item_ids, slots, explore, strict=True)))
