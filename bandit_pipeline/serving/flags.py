"""Feature flags through the OpenFeature SDK, with a provider backed by the online store.

``bandit_exploration_enabled`` (boolean), ``bandit_explore_slots`` (1 or 2) and
``bandit_explore_traffic_percent`` (0-100: the rollout share of users) are read per
namespace from the store (``bandit-pipeline flags set``), falling back to the settings.
The built-in provider's answer depends only on the namespace and the stored values, so
``ExplorationFlags`` evaluates each flag through the SDK once per namespace each time the
stored values change (the serving state re-reads them every refresh), not per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from bandit_pipeline.flag_values import (
    EXPLORATION_ENABLED,
    EXPLORE_SLOTS,
    EXPLORE_TRAFFIC_PERCENT,
    FLAGS,
    flag_problem,
)

__all__ = [
    "EXPLORATION_ENABLED",
    "EXPLORE_SLOTS",
    "EXPLORE_TRAFFIC_PERCENT",
    "FLAGS",
    "flag_problem",
]


class FlagsUnavailable(RuntimeError):
    """The stored flags could not be read: the evaluation fails, and serving does not
    explore."""


class StoreFlagProvider(AbstractProvider):
    """Resolves flags from per-namespace values (read from the online store) and falls back
    to the settings' defaults. ``read_flags(namespace)`` returns None when the store's
    flags cannot be read: the evaluation then fails and serving does not explore."""

    def __init__(
        self, read_flags: Callable[[str], dict[str, str] | None], defaults: dict[str, object]
    ) -> None:
        self.read_flags = read_flags
        self.defaults = defaults

    def get_metadata(self) -> Metadata:
        return Metadata(name="bandit-online-store")

    def _raw(self, flag_key: str, context: EvaluationContext | None) -> tuple[object, Reason]:
        namespace = (context.attributes.get("namespace") if context else None) or "default"
        stored = self.read_flags(str(namespace))
        if stored is None:
            raise FlagsUnavailable("flags could not be read from the online store")
        if flag_key in stored:
            return stored[flag_key], Reason.TARGETING_MATCH
        if flag_key in self.defaults:
            return self.defaults[flag_key], Reason.DEFAULT
        raise KeyError(flag_key)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        value, reason = self._raw(flag_key, evaluation_context)
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in {"true", "false", "1", "0", "on", "off"}:
                return FlagResolutionDetails(
                    default_value, error_code=ErrorCode.PARSE_ERROR, reason=Reason.ERROR,
                    error_message=f"{flag_key}={value!r} is not a boolean",
                )  # fmt: skip
            value = lowered in {"true", "1", "on"}
        return FlagResolutionDetails(bool(value), reason=reason)

    def _number(self, flag_key, default_value, evaluation_context, convert, kind):
        """The stored value as a number, or a parse error that names the flag."""
        value, reason = self._raw(flag_key, evaluation_context)
        try:
            return FlagResolutionDetails(convert(value), reason=reason)
        except (TypeError, ValueError):
            return FlagResolutionDetails(
                default_value, error_code=ErrorCode.PARSE_ERROR, reason=Reason.ERROR,
                error_message=f"{flag_key}={value!r} is not {kind}",
            )  # fmt: skip

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._number(flag_key, default_value, evaluation_context, int, "an integer")

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        value, reason = self._raw(flag_key, evaluation_context)
        return FlagResolutionDetails(str(value), reason=reason)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._number(flag_key, default_value, evaluation_context, float, "a number")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence | Mapping,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence | Mapping]:
        value, reason = self._raw(flag_key, evaluation_context)
        return FlagResolutionDetails(value, reason=reason)


def flag_client(provider: AbstractProvider, domain: str) -> OpenFeatureClient:
    """An OpenFeature client bound to ``provider`` under its own domain."""
    api.set_provider(provider, domain=domain)
    return api.get_client(domain)


def release_flag_client(domain: str) -> None:
    """Unbind the domain's provider so that it (and the serving state it reads) can be
    freed: the SDK cannot remove a domain, so the domain falls back to the default
    provider, which the registry holds anyway."""
    api.set_provider(api.provider_registry.get_default_provider(), domain=domain)


def exploration_flags(
    client: OpenFeatureClient, namespace: str, user_id: str
) -> tuple[bool, int, float, str | None]:
    """(enabled, slots, traffic percent, problem): each flag evaluated once; a failed
    evaluation means no exploration and names the problem."""
    context = EvaluationContext(targeting_key=user_id, attributes={"namespace": namespace})
    enabled = client.get_boolean_details(EXPLORATION_ENABLED, False, context)
    if enabled.error_code is not None:
        return (
            False,
            0,
            0.0,
            f"flag {EXPLORATION_ENABLED}: {enabled.error_message or enabled.error_code}",
        )
    if not enabled.value:
        return False, 0, 0.0, None
    slots = client.get_integer_details(EXPLORE_SLOTS, 1, context)
    if slots.error_code is not None:
        return False, 0, 0.0, f"flag {EXPLORE_SLOTS}: {slots.error_message or slots.error_code}"
    if slots.value not in (1, 2):
        return False, 0, 0.0, f"flag {EXPLORE_SLOTS}: must be 1 or 2, got {slots.value}"
    share = client.get_float_details(EXPLORE_TRAFFIC_PERCENT, 100.0, context)
    if share.error_code is not None:
        problem = share.error_message or share.error_code
        return False, 0, 0.0, f"flag {EXPLORE_TRAFFIC_PERCENT}: {problem}"
    if not 0 <= share.value <= 100:
        return False, 0, 0.0, f"flag {EXPLORE_TRAFFIC_PERCENT}: must be 0-100, got {share.value}"
    return True, slots.value, share.value, None


class ExplorationFlags:
    """``exploration_flags`` through an OpenFeature client, remembered per namespace while
    the stored values it was computed from (``read_flags(namespace)``, replaced by a new
    mapping on every refresh) are the same object. Valid for providers whose values do
    not depend on the user, as the built-in one; a failed read is never remembered."""

    def __init__(
        self, client: OpenFeatureClient, read_flags: Callable[[str], dict[str, str] | None]
    ) -> None:
        self.client = client
        self.read_flags = read_flags
        self._memo: dict[str, tuple[dict[str, str], tuple[bool, int, float, str | None]]] = {}

    def get(self, namespace: str, user_id: str) -> tuple[bool, int, float, str | None]:
        """(enabled, slots, traffic percent, problem), as ``exploration_flags``."""
        stored = self.read_flags(namespace)
        memo = self._memo.get(namespace)
        if memo is not None and stored is not None and memo[0] is stored:
            return memo[1]
        result = exploration_flags(self.client, namespace, user_id)
        if stored is not None and result[3] is None:
            self._memo[namespace] = (stored, result)
        return result
