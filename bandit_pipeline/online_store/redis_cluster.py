"""The Redis store on a Redis Cluster (``redis+cluster://`` and ``rediss+cluster://``).

The keys, the restore's script and the encodings are ``RedisStore``'s; what changes is
where each command goes. Every key carries a hash tag (``redis``'s docstring), so the keys
of one snapshot (its pointer and its blobs) share a slot, as do a namespace's flags,
kill switches and restore marker, and a user's exposures live under one key. Each step
that must happen in order or in one go touches one slot, and goes to that slot's
primary:

- a publish: the blob, then the pointer, then the replaced blob's expiry, on one
  connection to the primary of the surface's slot; surfaces on different primaries are
  published one primary after another. Atomic per surface, as on one server.
- the restore's publish: the same script, whose two keys share the snapshot's slot.
- a decision's exposure exchange: the queued writes it carries (other users' keys) and
  its read, split by primary, each share sent as one payload on this thread's
  connection to that primary (the same wire path as on one server), the read's primary
  first; the answers are read after the draws, as on one server.
- the writer thread's exposure writes (when traffic stops): one pipeline per primary.
- everything else is one command on one key, through redis-py's cluster client, which
  follows MOVED and ASK redirections itself.

When a primary does not answer, only its slots fail: their calls raise StoreUnavailable,
and the slot map is read again, so after a failover the slot's new primary is used from
the next call on. A batch of exposure writes whose primary is down is reported as
refused for those exposures only (``write_exposures``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.exceptions import AskError, ClusterDownError
from redis.retry import Retry

from bandit_pipeline.online_store import redis_wire
from bandit_pipeline.online_store.interface import ExposureRead
from bandit_pipeline.online_store.redis import (
    DEFAULT_SPIN_SECONDS,
    PUBLISH_UNLESS_NEWER,
    RedisStore,
    _write_errors,
)
from bandit_pipeline.online_store.redis_wire import FAILURES, ClusterConnections, pack_command
from bandit_pipeline.online_store.snapshot import Snapshot
from bandit_pipeline.online_store.types import Exposure, StoreRejected, StoreUnavailable

SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def cluster_url(url: str) -> tuple[str, list[tuple[str, int]]]:
    """``redis+cluster://[user:password@]host:port[,host:port...]/[?options]`` as the
    URL of the first node for redis-py (``redis://`` or ``rediss://``, the user, the
    password and the options kept) and the (host, port) of every node given. Raises
    ValueError for anything else (a database other than 0: a cluster has only one)."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in SCHEMES:
        raise ValueError("expected redis+cluster://host:port[,host:port...]/")
    parts = urlsplit(f"//{rest}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for host in hosts.split(","):
        node = urlsplit(f"//{host}")
        if not node.hostname:
            raise ValueError(f"no host in {host!r} (expected host:port)")
        nodes.append((node.hostname, node.port or 6379))
    if parts.path not in ("", "/", "/0"):
        raise ValueError("a Redis Cluster has one database, 0: end the URL with / or /0")
    first = f"{userinfo}@{hosts.split(',')[0]}" if userinfo else hosts.split(",")[0]
    query = f"?{parts.query}" if parts.query else ""
    return f"{SCHEMES[scheme]}://{first}/{query}", nodes


class RedisClusterStore(RedisStore):
    """The online store on a Redis Cluster; see the module docstring. The cluster client
    is made on first use (it reads the slot map then), so a store opened while the
    cluster is down answers StoreUnavailable until the cluster is back, as one server's
    store does."""

    def __init__(
        self,
        connect: Callable[[], RedisCluster],
        prefix: str = "bandit",
        *,
        spin_seconds: float = DEFAULT_SPIN_SECONDS,
    ) -> None:
        # RedisStore's own __init__ needs a connected client; this one connects later.
        self.prefix = prefix
        self.spin_ns = int(spin_seconds * 1e9)
        self._connect = connect
        self._lock = threading.Lock()
        self._cluster: ClusterConnections | None = None
        self._script: Script | None = None

    @staticmethod
    def client_from_url(url: str, timeout_seconds: float) -> Callable[[], RedisCluster]:
        """What ``from_url`` opens this store with: how to make its cluster client."""
        first, nodes = cluster_url(url)

        def connect() -> RedisCluster:
            return RedisCluster.from_url(
                first,
                startup_nodes=[ClusterNode(host, port) for host, port in nodes[1:]],
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
                # A failed call is not tried again on the request path (the slot map is
                # read again, and the next call uses it), and a slot without a primary
                # fails alone instead of the whole client.
                retry=Retry(NoBackoff(), 0),
                require_full_coverage=False,
            )

        return connect

    def connections(self) -> ClusterConnections:
        """The cluster client and its per-primary connections, made on first use."""
        cluster = self._cluster
        if cluster is None:
            with self._lock:
                if self._cluster is None:
                    try:
                        client = self._connect()
                    except FAILURES as exc:
                        raise StoreUnavailable(f"redis cluster: {exc}") from exc
                    self._script = client.register_script(PUBLISH_UNLESS_NEWER)
                    self._cluster = ClusterConnections(client)
                cluster = self._cluster
        return cluster

    @property
    def client(self) -> RedisCluster:
        """redis-py's cluster client (its ordinary commands go to their key's slot)."""
        return self.connections().client

    @property
    def _publish_unless_newer(self) -> Script:
        self.connections()
        assert self._script is not None
        return self._script

    def publish_many(self, snapshots: Sequence[Snapshot]) -> None:
        """Per primary, ``publish_on`` its surfaces (two round trips). A primary that
        fails leaves its surfaces as they were and the others published; then the slot
        map is read again and StoreUnavailable raised."""
        snapshots = list(snapshots)
        cluster = self.connections()
        keys = (self.snapshot_key(s.namespace, s.surface) for s in snapshots)
        failure: StoreUnavailable | None = None
        for node, indexes in cluster.by_primary(keys):
            try:
                self.publish_on(cluster.pool(node), [snapshots[i] for i in indexes])
            except StoreUnavailable as exc:
                cluster.refresh(node)
                failure = failure or exc
        if failure is not None:
            raise failure

    def write_exposures(self, exposures: Sequence[Exposure]) -> dict[int, Exception]:
        """One pipeline per primary. The exposures of a primary that cannot be reached
        are returned as refused (with StoreUnavailable), so the others are recorded
        meanwhile; StoreUnavailable is raised only when no primary took its writes."""
        if not exposures:
            return {}
        cluster = self.connections()
        errors: dict[int, Exception] = {}
        failure: StoreUnavailable | None = None
        unreachable = 0
        for _, indexes in cluster.by_primary(self._exposure_keys(exposures)):
            try:  # RedisStore's pipeline, here the cluster client's
                refused = super().write_exposures([exposures[i] for i in indexes])
            except StoreUnavailable as exc:
                failure = exc
                errors.update(dict.fromkeys(indexes, failure))
                unreachable += len(indexes)
                continue
            errors.update({indexes[local]: error for local, error in refused.items()})
        if failure is not None and unreachable == len(exposures):
            raise failure
        return errors

    def exchange_exposures(
        self, writes: Sequence[Exposure], namespace: str, user_id: str, now: datetime
    ) -> ExposureRead:
        """As on one server, the writes and the read go out before ``result()`` and their
        answers are read in it, but as one payload per primary: the read's primary gets
        its share of the writes and the read (sent first, on this thread's connection to
        it), every other primary its share of the writes. When the read's primary cannot
        be reached nothing else is sent and StoreUnavailable is raised (the writes may be
        made again later: harmless); the writes of another primary that cannot be reached
        are reported refused, with StoreUnavailable. Writes and a read answered MOVED or
        ASK (the slot is served elsewhere since the map was read: a failover, a
        resharding) are made again through the cluster client, which follows the move."""
        read = self.recent_read(namespace, user_id, now)
        cluster = self.connections()
        groups = cluster.by_primary(self._exposure_keys(writes), first=cluster.node(read[1]))
        parts = []
        for node, indexes in groups:  # the read's primary first
            part = _Part(node, indexes, self._exposure_commands([writes[i] for i in indexes]))
            packed = [pack_command(command) for command in part.commands]
            if not parts:
                packed.append(pack_command(read))
            try:
                connection = cluster.thread_connection(node)
                spin_ns = 0 if parts else self.spin_ns
                part.exchange = redis_wire.Exchange(
                    connection, b"".join(packed), len(packed), spin_ns
                )
            except StoreUnavailable as exc:
                cluster.refresh(node)
                if not parts:
                    raise
                part.failure = exc
            parts.append(part)

        def answer() -> tuple[set[str], dict[int, Exception]]:
            errors: dict[int, Exception] = {}
            moved: list[int] = []
            reply: object = None
            for part in parts:  # every part is read: no connection keeps unread answers
                replies: list = []
                if part.exchange is not None:
                    try:
                        replies = part.exchange()[0]
                    except StoreUnavailable as exc:
                        cluster.refresh(part.node)
                        part.failure = exc
                if part.failure is not None:
                    errors.update(dict.fromkeys(part.indexes, part.failure))
                    continue
                if part is parts[0]:
                    reply = replies.pop()
                for local, error in _write_errors(part.commands, replies).items():
                    if isinstance(error, AskError):
                        moved.append(part.indexes[local])
                    else:
                        errors[part.indexes[local]] = error
            if parts[0].failure is not None:
                raise parts[0].failure
            if moved or isinstance(reply, AskError):
                cluster.refresh()
            if moved:
                again = self.write_exposures([writes[i] for i in moved])
                errors.update({moved[local]: error for local, error in again.items()})
            return self._items(read, reply), errors

        return ExposureRead(answer)

    def failure_domain(self, namespace: str, user_id: str) -> str:
        """The primary that serves the user's exposure key, from the slot map (no round
        trip): a dead primary opens serving's breaker for its users only."""
        try:
            return self.connections().node(self.exposure_key(namespace, user_id)).name
        except StoreUnavailable:
            return ""

    def _exposure_keys(self, exposures: Sequence[Exposure]) -> list[str]:
        return [self.exposure_key(e.namespace, e.user_id) for e in exposures]

    def _items(self, read: tuple, reply: object) -> set[str]:
        """The items of the read's answer; a read answered MOVED or ASK is made again
        through the cluster client."""
        if isinstance(reply, AskError):
            try:
                reply = self.client.execute_command(*read)
            except FAILURES as exc:
                raise StoreUnavailable(f"redis cluster: {exc}") from exc
            except redis.ResponseError as exc:
                reply = exc
        if isinstance(reply, ClusterDownError):
            raise StoreUnavailable(f"redis cluster: {reply}")
        if isinstance(reply, Exception):
            raise StoreRejected(f"redis: {reply}")
        return {item.decode() for item in reply}

    def close(self) -> None:
        with self._lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.close()


class _Part:
    """The share of one exchange that goes to one primary: its exposures (by index in
    the exchange's writes), their commands, and the exchange sent, or why not."""

    __slots__ = ("commands", "exchange", "failure", "indexes", "node")

    def __init__(self, node: ClusterNode, indexes: list[int], commands: list[tuple]) -> None:
        self.node, self.indexes, self.commands = node, indexes, commands
        self.exchange: redis_wire.Exchange | None = None
        self.failure: StoreUnavailable | None = None
