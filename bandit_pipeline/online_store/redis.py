"""The Redis online store (production).

Key layout, every key under a configurable prefix; the part in braces is the Redis
Cluster hash tag, so each snapshot's keys share one slot:

- ``{prefix}:{ns|surface}:snapshot``            the current version (the pointer)
- ``{prefix}:{ns|surface}:snapshot:{version}``  the encoded snapshot (one blob)
- ``{prefix}:{ns}:flags``                       hash: flag name -> value
- ``{prefix}:{ns}:killswitch``                  hash: surface -> state as JSON
- ``{prefix}:{ns}:restored``                    when the store was seeded from the warehouse
- ``{prefix}:{ns|user}:exposed``                sorted set: item -> exposure time, TTL 1 h

A publish writes the new blob, then flips the pointer (the blob exists before the pointer
names it), then gives the replaced blob an expiry: a reader gets the pointer, then the
blob it names, which is still there for an hour after it was replaced. The restore's
publish (``publish_unless_newer``) does the same in one script, which first checks that
the pointer names no newer version; its flags and kill switches go in with HSETNX.

The methods ``snapshot_key``, ``flags_key``, ``killswitch_key``, ``restore_marker_key``
and ``exposure_key`` name the keys. Ordinary commands go through redis-py's client; the
two that must be fast (a decision's exposure exchange, the blobs of a publish) go below
it, through ``redis_wire``, the one module that relies on how redis-py works inside.
``redis_cluster.RedisClusterStore`` is this store on a Redis Cluster: the same keys, the
same script, each command sent to the primary of its key's slot.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import datetime

import redis

from bandit_pipeline.online_store import redis_wire
from bandit_pipeline.online_store.interface import ExposureRead, OnlineStore
from bandit_pipeline.online_store.redis_wire import FAILURES, pack_command, packed_set
from bandit_pipeline.online_store.snapshot import Snapshot
from bandit_pipeline.online_store.types import (
    Exposure,
    KillSwitchState,
    StoreRejected,
    StoreUnavailable,
)
from bandit_pipeline.timing import EXPOSURE_TTL_SECONDS, SUPERSEDED_GRACE_SECONDS

# Each exposure write also drops the user's entries older than the guard's hour with
# this probability: reads ignore them anyway, and trimming every time costs the request
# path about 5 us of Redis time for nothing; a user's set still stays near one hour's
# worth, and the key's expiry removes the whole set an hour after its last write.
TRIM_PROBABILITY = 1 / 8
_trim_draws = random.Random()


# The restore's publish (``publish_unless_newer``) of one snapshot, as one script, which
# Redis runs with nothing in between: unless the pointer names a newer version, write the
# blob, then move the pointer. KEYS: the pointer, the blob of the version; ARGV: the
# version, the encoded snapshot. Versions compare byte by byte, as Python compares them
# (Lua's < on strings follows the server's locale). Returns {1, the replaced version or
# ""} when it published, {0, the newer version} when it did not.
PUBLISH_UNLESS_NEWER = """
local function newer(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local current = redis.call('GET', KEYS[1])
if current and newer(current, ARGV[1]) then
  return {0, current}
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1])
return {1, current or ''}
"""


# How long an exposure exchange polls its socket for the answer before it blocks for it
# (``redis_wire.await_answer``).
DEFAULT_SPIN_SECONDS = 0.0002


class RedisStore(OnlineStore):
    """The online store on one Redis endpoint (a server, or a proxy before a cluster)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "bandit",
        *,
        spin_seconds: float = DEFAULT_SPIN_SECONDS,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.spin_ns = int(spin_seconds * 1e9)
        self._exchange_connections = redis_wire.ThreadConnections(client)
        self._publish_unless_newer = client.register_script(PUBLISH_UNLESS_NEWER)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "bandit",
        timeout_seconds: float = 0.05,
        spin_seconds: float = DEFAULT_SPIN_SECONDS,
    ) -> RedisStore:
        return cls(cls.client_from_url(url, timeout_seconds), prefix, spin_seconds=spin_seconds)

    @staticmethod
    def client_from_url(url: str, timeout_seconds: float) -> redis.Redis:
        """The client ``from_url`` opens the store with: each call bounded by the
        timeout, none tried again."""
        return redis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry_on_timeout=False,
        )

    # The key layout of the module docstring.

    def snapshot_key(self, namespace: str, surface: str, version: str | None = None) -> str:
        """The key of the surface's version pointer, or of the blob of ``version``."""
        key = f"{self.prefix}:{{{namespace}|{surface}}}:snapshot"
        return f"{key}:{version}" if version else key

    def flags_key(self, namespace: str) -> str:
        """The hash of the namespace's flags (name -> value)."""
        return f"{self.prefix}:{{{namespace}}}:flags"

    def killswitch_key(self, namespace: str) -> str:
        """The hash of the namespace's kill switches (surface -> state as JSON)."""
        return f"{self.prefix}:{{{namespace}}}:killswitch"

    def restore_marker_key(self, namespace: str) -> str:
        """The time (ISO 8601) the namespace was seeded from the warehouse's record."""
        return f"{self.prefix}:{{{namespace}}}:restored"

    def exposure_key(self, namespace: str, user_id: str) -> str:
        """The sorted set of the user's exposures (item -> time explored)."""
        return f"{self.prefix}:{{{namespace}|{user_id}}}:exposed"

    def publish(self, snapshot: Snapshot) -> None:
        self.publish_many([snapshot])

    def publish_many(self, snapshots: Sequence[Snapshot]) -> None:
        """Two round trips for any number of surfaces (``publish_on``)."""
        self.publish_on(self.client.connection_pool, list(snapshots))

    def publish_on(self, pool: redis.ConnectionPool, snapshots: list[Snapshot]) -> None:
        """Publish ``snapshots`` in two round trips on one connection of ``pool``. On one
        connection the commands run in order, so each blob exists before the pointer
        that names it; the pointer moves with one SET (returning the replaced version),
        then the replaced blobs get their expiry. No MULTI spans two surfaces, which live
        in different Cluster slots.

        Each blob goes out as the pieces of its encoding (the posterior arrays straight
        from their memory) behind a hand-written RESP header, instead of being joined
        into one blob and then copied again into a packed command. Each snapshot is
        encoded just before it is sent, on this thread: encoding on a helper thread
        while the previous blob went out made 3 x 100,000 items about 20% slower, since
        the sending thread waits for the interpreter lock after each partial send while
        the encoder holds it.
        """

        def commands() -> Iterator[bytes | memoryview]:
            for snapshot in snapshots:
                parts = snapshot.encoded_parts()
                ns, surface, version = snapshot.namespace, snapshot.surface, snapshot.version
                yield from packed_set(self.snapshot_key(ns, surface, version), parts)
                yield pack_command(("SET", self.snapshot_key(ns, surface), version, "GET"))

        replies = redis_wire.round_trip(pool, commands(), 2 * len(snapshots))
        expire = [
            pack_command(("EXPIRE", self.snapshot_key(s.namespace, s.surface, previous.decode()),
                          SUPERSEDED_GRACE_SECONDS))
            for s, previous in zip(snapshots, replies[1::2], strict=True)
            if previous and previous.decode() != s.version
        ]  # fmt: skip
        if expire:
            redis_wire.round_trip(pool, expire, len(expire))

    def publish_unless_newer(self, snapshots: Sequence[Snapshot]) -> list[bool]:
        """One script per snapshot, its blob sent with it, so that a refused snapshot
        leaves no blob behind; then the replaced blobs get their expiry, as in
        ``publish_many``. Not the fast path: the restore calls it, rarely."""
        published: list[bool] = []
        replaced: list[str] = []
        try:
            for snapshot in snapshots:
                ns, surface, version = snapshot.namespace, snapshot.surface, snapshot.version
                done, previous = self._publish_unless_newer(
                    keys=[self.snapshot_key(ns, surface), self.snapshot_key(ns, surface, version)],
                    args=[version, snapshot.encode()],
                )
                published.append(bool(done))
                if done and previous and previous.decode() != version:
                    replaced.append(self.snapshot_key(ns, surface, previous.decode()))
            if replaced:
                with self.client.pipeline(transaction=False) as pipe:
                    for key in replaced:
                        pipe.expire(key, SUPERSEDED_GRACE_SECONDS)
                    pipe.execute()
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc
        return published

    def current_version(self, namespace: str, surface: str) -> str | None:
        try:
            version = self.client.get(self.snapshot_key(namespace, surface))
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc
        return version.decode() if version else None

    def load(self, namespace: str, surface: str) -> Snapshot | None:
        # Two tries: the pointer can move between the two reads; the blob it named stays
        # for the grace period, so a second miss means the data really is gone.
        for _ in range(2):
            version = self.current_version(namespace, surface)
            if version is None:
                return None
            try:
                blob = self.client.get(self.snapshot_key(namespace, surface, version))
            except FAILURES as exc:
                raise StoreUnavailable(str(exc)) from exc
            if blob is not None:
                return Snapshot.decode(blob)
        return None

    def flags(self, namespace: str) -> dict[str, str]:
        try:
            raw = self.client.hgetall(self.flags_key(namespace))
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc
        return {k.decode(): v.decode() for k, v in raw.items()}

    def set_flag(self, namespace: str, name: str, value: str | None) -> None:
        key = self.flags_key(namespace)
        try:
            if value is None:
                self.client.hdel(key, name)
            else:
                self.client.hset(key, name, value)
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc

    def set_flag_if_absent(self, namespace: str, name: str, value: str) -> bool:
        try:
            return bool(self.client.hsetnx(self.flags_key(namespace), name, value))
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc

    def killswitch(self, namespace: str, surface: str) -> KillSwitchState | None:
        try:
            raw = self.client.hget(self.killswitch_key(namespace), surface)
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc
        return KillSwitchState.from_json(raw) if raw else None

    def set_killswitch(self, namespace: str, surface: str, state: KillSwitchState) -> None:
        try:
            self.client.hset(self.killswitch_key(namespace), surface, state.to_json())
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc

    def set_killswitch_if_absent(
        self, namespace: str, surface: str, state: KillSwitchState
    ) -> bool:
        try:
            key = self.killswitch_key(namespace)
            return bool(self.client.hsetnx(key, surface, state.to_json()))
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc

    def restore_marker(self, namespace: str) -> datetime | None:
        try:
            raw = self.client.get(self.restore_marker_key(namespace))
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc
        return datetime.fromisoformat(raw.decode()) if raw else None

    def set_restore_marker(self, namespace: str, at: datetime) -> None:
        try:
            self.client.set(self.restore_marker_key(namespace), at.isoformat())
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _exposure_commands(self, exposures: Sequence[Exposure]) -> list[tuple]:
        """Per exposure: add the items at its time and keep the key an hour past its
        latest write; now and then also trim what is older than the hour. Each
        exposure's commands start with its ZADD (``_write_errors`` relies on it)."""
        commands: list[tuple] = []
        for exposure in exposures:
            key = self.exposure_key(exposure.namespace, exposure.user_id)
            stamp = exposure.at.timestamp()
            members = [x for item in exposure.item_ids for x in (stamp, item)]
            commands += [("ZADD", key, *members), ("EXPIRE", key, EXPOSURE_TTL_SECONDS)]
            if _trim_draws.random() < TRIM_PROBABILITY:
                older = f"({stamp - EXPOSURE_TTL_SECONDS}"
                commands.append(("ZREMRANGEBYSCORE", key, "-inf", older))
        return commands

    def write_exposures(self, exposures: Sequence[Exposure]) -> dict[int, Exception]:
        if not exposures:
            return {}
        commands = self._exposure_commands(exposures)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                replies = pipe.execute(raise_on_error=False)
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc
        return _write_errors(commands, replies)

    def recent_exposures(self, namespace: str, user_id: str, now: datetime) -> set[str]:
        return self.exchange_exposures((), namespace, user_id, now).result()

    def exchange_exposures(
        self, writes: Sequence[Exposure], namespace: str, user_id: str, now: datetime
    ) -> ExposureRead:
        """The writes and the read go out in one send on this thread's connection, and
        the answers are read in ``result()``: the caller samples while the store
        answers. On one connection Redis runs them in order, so the read sees the writes.
        An error answer to one write fails that write only. A connection the server has
        dropped gets one more try on a new one (``redis_wire.Exchange``): every command
        of the exchange can be repeated safely."""
        payload, commands = self.exchange_payload(writes, namespace, user_id, now)
        connection = self._exchange_connections.get()
        exchange = redis_wire.Exchange(connection, payload, len(commands) + 1, self.spin_ns)
        return ExposureRead(lambda: _exposure_answer(exchange(), commands))

    def exchange_payload(
        self, writes: Sequence[Exposure], namespace: str, user_id: str, now: datetime
    ) -> tuple[bytes, list[tuple]]:
        """The packed commands of an exchange (the writes', then the read) and the write
        commands, whose answers come first."""
        # Packed first: a key that cannot be sent fails alone.
        packed_read = pack_command(self.recent_read(namespace, user_id, now))
        commands = self._exposure_commands(writes)
        return b"".join([*(pack_command(command) for command in commands), packed_read]), commands

    def recent_read(self, namespace: str, user_id: str, now: datetime) -> tuple:
        """The command that reads the user's exposures in the hour before ``now``."""
        key = self.exposure_key(namespace, user_id)
        return ("ZRANGEBYSCORE", key, now.timestamp() - EXPOSURE_TTL_SECONDS, "+inf")

    def ping(self) -> None:
        try:
            self.client.ping()
        except FAILURES as exc:
            raise StoreUnavailable(str(exc)) from exc

    def close(self) -> None:
        self._exchange_connections.close()
        self.client.close()


def _write_errors(commands: Sequence[tuple], replies: Sequence[object]) -> dict[int, Exception]:
    """The error answer, if any, of each write (by its index in the batch)."""
    errors: dict[int, Exception] = {}
    exposure = -1
    for command, reply in zip(commands, replies, strict=True):
        exposure += command[0] == "ZADD"
        if isinstance(reply, Exception):
            errors[exposure] = reply
    return errors


def _exposure_answer(
    answer: tuple[list, bool], commands: Sequence[tuple]
) -> tuple[set[str], dict[int, Exception]]:
    """An exchange's replies as (the items read, the refused writes by index); an error
    answer to the read is StoreRejected."""
    replies, refused = answer
    read = replies.pop()
    if isinstance(read, Exception):
        raise StoreRejected(f"redis: {read}")
    return {item.decode() for item in read}, (_write_errors(commands, replies) if refused else {})
