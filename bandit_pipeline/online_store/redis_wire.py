"""The Redis store's wire code: everything that relies on how redis-py works inside.

The Redis store sends its ordinary commands through redis-py's client. Two paths go
below it, for speed: a decision's exposure exchange (its writes and its read packed
into one payload, sent on a connection the thread keeps, the socket polled for the
answer) and a publish (each blob sent as the pieces of its encoding behind a
hand-written RESP header). They rest on these assumptions about redis-py and hiredis;
``bandit_pipeline_tests/test_redis_wire.py`` checks each one, by its number, against a
real server, so an upgrade that breaks one fails there by name. redis-py's major version
is pinned in pyproject.toml.

A1. ``hiredis.pack_command(args)`` packs a command (str, bytes, int and float
    arguments) as the RESP array of bulk strings that redis-py itself would send, and
    ``packed_set`` below writes the same bytes as redis-py for a SET.
A2. A ``redis.ConnectionPool(connection_class=pool.connection_class,
    **pool.connection_kwargs)`` connects to the same server in the same way (TCP, TLS
    or unix socket) as the client's own ``pool``.
A3. ``ConnectionPool.get_connection()`` takes no argument and gives a connected
    connection with nothing unread on it; ``release(connection)`` takes it back and
    ``disconnect()`` closes every connection of the pool.
A4. ``connection.send_packed_command(chunks, check_health=False)`` connects first when
    the connection is not connected, then writes the chunks (bytes or memoryviews) in
    order; when the write fails it has disconnected the connection and raises
    ``redis.ConnectionError`` or ``redis.TimeoutError``.
A5. ``connection.read_response()`` reads the next reply. An error reply raises
    ``redis.ResponseError`` and leaves the stream on the reply after it; a connection
    the server closed raises ``redis.ConnectionError``, and no answer within the
    socket timeout ``redis.TimeoutError`` (not a ``ConnectionError``); after either the
    connection is disconnected.
A6. A connected connection's socket is ``connection._sock`` (None when it is not
    connected), and it polls readable once an answer has arrived.
A7. ``connection.disconnect()`` drops whatever was not read: the next send on the
    connection opens a new one, and its replies are the only ones read.

The Redis Cluster store (``redis_cluster``) sends the same payloads, each to the primary
of its keys' slot, through ``ClusterConnections`` below, and rests on three more
(checked in ``bandit_pipeline_tests/test_redis_cluster.py``):

A8. ``RedisCluster.get_node_from_key(key)`` gives, from the client's slot map and
    without a round trip, the primary serving the key's slot (hash tag included): a
    ``ClusterNode`` whose ``name`` (``host:port``) stays the same across map refreshes.
A9. ``RedisCluster.get_redis_connection(node)`` gives the node's ``redis.Redis``, whose
    ``connection_pool`` connects to that node alone, so A2 to A7 hold for it.
A10. ``RedisCluster.nodes_manager.initialize(last_failed_node_name=name)`` reads the
    slot map again from the nodes that answer (the named one last), so after a failover
    A8 names the new primary; it raises when no node answers, and the old map stays.
"""

from __future__ import annotations

import os
import select
import threading
import time
import weakref
from collections.abc import Iterable, Sequence

import redis
from hiredis import pack_command
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import AbstractConnection
from redis.exceptions import ClusterError, RedisClusterException, TryAgainError

from bandit_pipeline.online_store.types import StoreUnavailable

__all__ = [
    "FAILURES",
    "ClusterConnections",
    "Exchange",
    "ThreadConnections",
    "await_answer",
    "pack_command",
    "packed_set",
    "round_trip",
]

# What a store call that could not reach Redis raises (A4, A5); on a cluster also a
# slot whose primary is down or not known (CLUSTERDOWN, a slot map that cannot be read)
# and a slot being moved (TRYAGAIN).
FAILURES = (
    redis.ConnectionError,
    redis.TimeoutError,
    ClusterError,
    TryAgainError,
    RedisClusterException,
)


def packed_set(key: str, value_parts: Sequence[bytes | memoryview]) -> list[bytes | memoryview]:
    """``SET key value`` in RESP (A1), the value given as consecutive pieces: sent one
    after another, they need not be joined into one blob first."""
    key_bytes = key.encode()
    size = sum(len(part) for part in value_parts)
    header = b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n" % (len(key_bytes), key_bytes, size)
    return [header, *value_parts, b"\r\n"]


def round_trip(
    pool: redis.ConnectionPool, chunks: Iterable[bytes | memoryview], replies: int
) -> list:
    """Send packed commands on one connection of ``pool`` and read their ``replies``
    (A3, A4, A5); any failure or error reply is StoreUnavailable."""
    try:
        connection = pool.get_connection()
    except FAILURES as exc:
        raise StoreUnavailable(f"redis: {exc}") from exc
    try:
        connection.send_packed_command(chunks)
        return [connection.read_response() for _ in range(replies)]
    except (*FAILURES, redis.ResponseError) as exc:
        connection.disconnect()  # unread replies must not reach the next user (A7)
        raise StoreUnavailable(f"redis publish failed: {exc}") from exc
    finally:
        pool.release(connection)


class ThreadConnections:
    """One connection per thread, from a pool of their own made like ``client``'s (A2).

    Checking a connection out of a pool and back in per decision (with its check for
    stray data) costs more than the rest of the exchange's client side, so a thread
    keeps its connection; it goes back to the pool when the thread ends. A pool of
    their own means threads that decide can never take every connection of the
    client's pool from the refresh, the exposure writer or the health check. A forked
    child never uses its parent's connection (they would share one socket).
    """

    def __init__(self, client: redis.Redis) -> None:
        source = client.connection_pool
        self.pool = redis.ConnectionPool(
            connection_class=source.connection_class, **source.connection_kwargs
        )
        self._local = threading.local()

    def get(self) -> AbstractConnection:
        """This thread's connection (A3)."""
        held = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():
            try:
                connection = self.pool.get_connection()
            except FAILURES as exc:
                raise StoreUnavailable(str(exc)) from exc
            held = self._local.held = _Held(connection, os.getpid())
            # Runs when the thread's locals go, at the thread's end.
            weakref.finalize(held, _give_back, self.pool, connection, held.pid)
        return held.connection

    def close(self) -> None:
        self._local = threading.local()
        self.pool.disconnect()


class _Held:
    __slots__ = ("__weakref__", "connection", "pid")

    def __init__(self, connection: AbstractConnection, pid: int) -> None:
        self.connection, self.pid = connection, pid


def _give_back(pool: redis.ConnectionPool, connection: AbstractConnection, pid: int) -> None:
    if os.getpid() == pid:
        pool.release(connection)


class Exchange:
    """Packed commands sent on a thread's connection when made, their replies read when
    called (once). A connection the server has dropped (idle timeout, restart,
    failover) gets one more try on a new one, for the send and for the replies alike:
    the caller sends only commands that can be repeated safely."""

    __slots__ = ("connection", "payload", "replies", "spin_ns")

    def __init__(
        self, connection: AbstractConnection, payload: bytes, replies: int, spin_ns: int = 0
    ) -> None:
        self.connection, self.payload, self.replies = connection, payload, replies
        self.spin_ns = spin_ns
        try:
            self._send()
        except StoreUnavailable as exc:
            if not _dropped(exc):
                raise
            self._send()  # on a new connection: the old one may have been dropped (A4)

    def __call__(self) -> tuple[list, bool]:
        """The replies in order, an error reply as its ``redis.ResponseError``, and
        whether there was one; StoreUnavailable when Redis could not be read."""
        try:
            return self._receive()
        except StoreUnavailable as exc:
            if not _dropped(exc):
                raise
        self._send()
        return self._receive()

    def _send(self) -> None:
        try:
            self.connection.send_packed_command([self.payload], check_health=False)
        except FAILURES as exc:  # send_packed_command has disconnected it (A4)
            raise StoreUnavailable(str(exc)) from exc

    def _receive(self) -> tuple[list, bool]:
        connection = self.connection
        replies: list = []
        refused = False
        if self.spin_ns:
            await_answer(connection, self.spin_ns)
        try:
            for _ in range(self.replies):
                try:
                    replies.append(connection.read_response())
                except redis.ResponseError as exc:  # the stream stays aligned (A5)
                    replies.append(exc)
                    refused = True
        except FAILURES as exc:
            connection.disconnect()  # unread answers must not reach the next read (A7)
            raise StoreUnavailable(str(exc)) from exc
        except BaseException:
            connection.disconnect()
            raise
        return replies, refused


def await_answer(connection: AbstractConnection, spin_ns: int) -> None:
    """Poll the connection's socket (A6) until the answer arrives, for at most
    ``spin_ns``; the blocking read that follows then finds it waiting. A thread that
    blocks for an answer from a Redis on the same machine is woken tens of microseconds
    after it arrived (benchmarks/serving_latency.py: the exposure read alone, blocking
    against polling), and the decision has nothing else to do meanwhile. Past the
    budget, or on any surprise, the ordinary blocking read (with its timeout) takes
    over."""
    sock = getattr(connection, "_sock", None)
    if sock is None:
        return
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poll, clock = poller.poll, time.perf_counter_ns
        deadline = clock() + spin_ns
        while not poll(0) and clock() < deadline:
            pass
    except (OSError, ValueError):
        return  # the read reports whatever is wrong with the socket


def _dropped(exc: StoreUnavailable) -> bool:
    """The connection failed (closed, reset, refused), as opposed to timing out (A5)."""
    return isinstance(exc.__cause__, redis.ConnectionError)


class ClusterConnections:
    """A Redis Cluster client and what the wire code sends on, per primary: the node's
    own pool for a publish's round trips (A9), and connections kept per thread for the
    exposure exchanges (``ThreadConnections`` on a pool made like the node's, A2)."""

    def __init__(self, client: RedisCluster) -> None:
        self.client = client
        self._threads: dict[str, ThreadConnections] = {}
        self._lock = threading.Lock()

    def node(self, key: str) -> ClusterNode:
        """The primary serving ``key``'s slot, from the slot map (A8)."""
        try:
            return self.client.get_node_from_key(key)
        except RedisClusterException as exc:  # the slot is not in the map
            raise StoreUnavailable(f"redis cluster: {exc}") from exc

    def by_primary(
        self, keys: Iterable[str], first: ClusterNode | None = None
    ) -> list[tuple[ClusterNode, list[int]]]:
        """The positions of ``keys`` grouped by the primary serving each key's slot (A8),
        in order of first appearance; ``first``'s group comes first, even when empty."""
        groups: dict[str, tuple[ClusterNode, list[int]]] = {}
        if first is not None:
            groups[first.name] = (first, [])
        for index, key in enumerate(keys):
            node = self.node(key)
            groups.setdefault(node.name, (node, []))[1].append(index)
        return list(groups.values())

    def pool(self, node: ClusterNode) -> redis.ConnectionPool:
        """The node's own connection pool (A9)."""
        return self.client.get_redis_connection(node).connection_pool

    def thread_connection(self, node: ClusterNode) -> AbstractConnection:
        """This thread's connection to ``node`` (A3, A9)."""
        connections = self._threads.get(node.name)
        if connections is None:
            with self._lock:
                connections = self._threads.get(node.name)
                if connections is None:
                    node_client = self.client.get_redis_connection(node)
                    connections = self._threads[node.name] = ThreadConnections(node_client)
        return connections.get()

    def refresh(self, failed: ClusterNode | None = None) -> None:
        """Read the slot map again, ``failed`` asked last (A10): after a failover the
        slot's new primary is used from the next call on. When no node answers the map
        stays as it was; the caller reports its own failure."""
        try:
            self.client.nodes_manager.initialize(
                last_failed_node_name=failed.name if failed is not None else None
            )
        except (*FAILURES, redis.RedisError):
            pass

    def close(self) -> None:
        with self._lock:
            threads, self._threads = list(self._threads.values()), {}
        for connections in threads:
            connections.close()
        self.client.close()
