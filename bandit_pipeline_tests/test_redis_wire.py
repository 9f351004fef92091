"""The assumptions about redis-py that ``online_store/redis_wire.py`` rests on, one test
each (A1 to A7 as numbered there), against the test Redis server. When a redis-py
upgrade breaks one, the test of that assumption fails and says which."""

from __future__ import annotations

import inspect
import select
import socket
import time
from collections.abc import Iterator

import pytest
import redis
from redis.connection import AbstractConnection, UnixDomainSocketConnection

from bandit_pipeline.online_store import StoreUnavailable, redis_wire
from bandit_pipeline.online_store.redis_wire import pack_command
from bandit_pipeline_tests.helpers import REDIS_URL

PING = pack_command(("PING",))


def holds(assumption: str, condition: bool, detail: str = "") -> None:
    """Fail naming the assumption of redis_wire.py and the installed redis-py."""
    assert condition, (
        f"redis-py {redis.__version__}: assumption {assumption} of "
        f"bandit_pipeline/online_store/redis_wire.py no longer holds. {detail}"
    )


@pytest.fixture
def client(redis_prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2.0)
    yield client
    client.close()


@pytest.fixture
def connection(client: redis.Redis) -> Iterator[AbstractConnection]:
    """A connection of a pool made as the store makes its exchange pool."""
    connections = redis_wire.ThreadConnections(client)
    yield connections.get()
    connections.close()


def test_a1_hiredis_packs_commands_as_resp(client, connection, redis_prefix):
    key = f"{redis_prefix}:packed"
    holds("A1", pack_command(("ZADD", key, 1.5, "a", 7, b"b")) == (
        b"*6\r\n$4\r\nZADD\r\n$%d\r\n%b\r\n$3\r\n1.5\r\n$1\r\na\r\n$1\r\n7\r\n$1\r\nb\r\n"
        % (len(key), key.encode())
    ))  # fmt: skip
    stamp = 1_764_331_200.123456  # a decision's time as the exposure commands send it
    connection.send_packed_command([pack_command(("ZADD", key, stamp, "item"))])
    connection.read_response()
    holds("A1", client.zscore(key, "item") == stamp, "a float score did not round-trip")
    value = [b"head-", memoryview(b"middle-"), memoryview(bytearray(b"tail"))]
    expected = pack_command(("SET", f"{key}:blob", b"head-middle-tail"))
    holds("A1", b"".join(redis_wire.packed_set(f"{key}:blob", value)) == expected)
    connection.send_packed_command(redis_wire.packed_set(f"{key}:blob", value))
    holds("A1", connection.read_response() == b"OK")
    holds("A1", client.get(f"{key}:blob") == b"head-middle-tail")


def test_a2_a_pool_made_from_the_clients_pool_reaches_the_same_server(client, redis_prefix):
    client.set(f"{redis_prefix}:marker", "here")
    connections = redis_wire.ThreadConnections(client)
    try:
        holds("A2", connections.pool.connection_class is client.connection_pool.connection_class)
        connection = connections.get()
        connection.send_packed_command([pack_command(("GET", f"{redis_prefix}:marker"))])
        holds("A2", connection.read_response() == b"here", "another server or database")
    finally:
        connections.close()
    unix = redis.Redis.from_url("unix:///run/never-connected.sock")
    made = redis_wire.ThreadConnections(unix).pool
    holds("A2", issubclass(made.connection_class, UnixDomainSocketConnection))
    holds("A2", made.connection_kwargs.get("path") == "/run/never-connected.sock")


def test_a3_a_pool_gives_connected_connections_and_takes_them_back(client):
    pool = redis.ConnectionPool(
        connection_class=client.connection_pool.connection_class,
        **client.connection_pool.connection_kwargs,
    )
    try:
        inspect.signature(pool.get_connection).bind()
    except TypeError as exc:
        holds("A3", False, f"get_connection() needs arguments now: {exc}")
    connection = pool.get_connection()
    holds("A3", isinstance(connection, AbstractConnection), f"got {type(connection)}")
    holds("A3", connection._sock is not None, "the connection is not connected")
    holds("A3", not connection.can_read(), "the connection has data waiting")
    pool.release(connection)
    holds("A3", pool.get_connection() is connection, "release() did not take it back")
    pool.release(connection)
    pool.disconnect()
    holds("A3", connection._sock is None, "disconnect() left the connection open")


def test_a4_send_packed_command_connects_sends_chunks_and_disconnects_on_failure(connection):
    parameters = inspect.signature(connection.send_packed_command).parameters
    holds("A4", "check_health" in parameters, f"parameters are {list(parameters)}")
    connection.disconnect()
    chunks = [memoryview(b"*2\r\n$4\r\nECHO\r\n"), b"$5\r\n", memoryview(b"chunk"), b"\r\n"]
    connection.send_packed_command(chunks, check_health=False)
    holds("A4", connection.read_response() == b"chunk", "the chunks did not go out in order")
    connection._sock.shutdown(socket.SHUT_WR)  # the next write fails
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)) as failure:
        connection.send_packed_command([PING], check_health=False)
    holds("A4", isinstance(failure.value, redis_wire.FAILURES), repr(failure.value))
    holds("A4", connection._sock is None, "a failed send left the connection connected")


def test_a5_replies_errors_drops_and_timeouts(client, connection, redis_prefix):
    key = f"{redis_prefix}:a-string"
    commands = [("SET", key, "x"), ("ZRANGEBYSCORE", key, 0, "+inf"), ("PING",)]
    connection.send_packed_command([b"".join(pack_command(c) for c in commands)])
    holds("A5", connection.read_response() == b"OK")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        connection.read_response()
    holds("A5", connection.read_response() == b"PONG", "an error reply misaligned the stream")

    connection.send_packed_command([pack_command(("CLIENT", "ID"))])
    client.client_kill_filter(_id=connection.read_response())

    def ping_until_dropped() -> None:
        for _ in range(50):  # the close may take a moment to arrive
            connection.send_packed_command([PING], check_health=False)
            connection.read_response()
            time.sleep(0.01)

    with pytest.raises(redis.ConnectionError):
        ping_until_dropped()
    holds("A5", connection._sock is None, "a dropped connection was left connected")

    holds("A5", not issubclass(redis.TimeoutError, redis.ConnectionError))
    slow = redis.Redis.from_url(REDIS_URL, socket_timeout=0.05).connection_pool
    waiting = slow.get_connection()
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        waiting.read_response()  # nothing was asked
    holds("A5", time.monotonic() - started < 1.0, "the socket timeout was not applied")
    holds("A5", waiting._sock is None, "a timed-out connection was left connected")
    slow.disconnect()


def test_a6_the_connections_socket_polls_readable_when_the_answer_is_there(connection):
    holds("A6", isinstance(connection._sock, socket.socket), f"_sock is {connection._sock!r}")
    poller = select.poll()
    poller.register(connection._sock, select.POLLIN)
    holds("A6", not poller.poll(0), "readable before anything was asked")
    connection.send_packed_command([PING], check_health=False)
    holds("A6", bool(poller.poll(2000)), "not readable with the answer on its way")
    holds("A6", connection.read_response() == b"PONG")
    connection.disconnect()
    holds("A6", connection._sock is None, "_sock is not None once disconnected")


def test_a7_disconnect_drops_the_unread_replies(connection):
    connection.send_packed_command([PING, PING], check_health=False)
    connection.read_response()
    connection.disconnect()
    connection.send_packed_command([pack_command(("ECHO", "fresh"))], check_health=False)
    holds("A7", connection.read_response() == b"fresh", "a stale reply came first")


def test_polling_for_an_answer_that_never_comes_gives_up_after_its_budget(connection):
    """With nothing on its way the poll returns once its budget is spent, and the
    connection stays usable for the next exchange."""
    started = time.perf_counter()
    redis_wire.await_answer(connection, spin_ns=20_000_000)
    assert time.perf_counter() - started >= 0.02
    redis_wire.await_answer(type("Unconnected", (), {"_sock": None})(), spin_ns=10**12)
    assert redis_wire.Exchange(connection, PING, replies=1, spin_ns=10**9)() == ([b"PONG"], False)


def test_an_unreachable_server_is_store_unavailable():
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.05)
    with pytest.raises(StoreUnavailable):
        redis_wire.ThreadConnections(client).get()
    with pytest.raises(StoreUnavailable):
        redis_wire.round_trip(client.connection_pool, [PING], 1)
