"""``open_store``: the online store a URL names, the one place the backends are chosen.

Only this module imports the backends, and they import nothing from it. Each backend is
imported when it is chosen: a process uses one, and each brings its own client library
(redis-py and hiredis; the SQL loader and SQLAlchemy for SQLite).
"""

from __future__ import annotations

from bandit_pipeline.online_store.interface import OnlineStore

# The URL schemes of a Redis Cluster (plain and TLS).
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def open_store(
    url: str,
    *,
    prefix: str = "bandit",
    timeout_seconds: float = 0.05,
    spin_seconds: float | None = None,
) -> OnlineStore:
    """The store at ``url``: ``redis://``, ``rediss://``, ``unix://``, a Redis Cluster
    (``redis+cluster://host:port[,host:port...]/``, ``rediss+cluster://``) or
    ``sqlite:///``. ``spin_seconds`` (Redis only): how long the exposure read polls for
    its answer before blocking; None keeps the store's default."""
    if url.startswith("sqlite:///"):
        from bandit_pipeline.online_store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    extra = {} if spin_seconds is None else {"spin_seconds": spin_seconds}
    if url.startswith(CLUSTER_SCHEMES):
        from bandit_pipeline.online_store.redis_cluster import RedisClusterStore

        return RedisClusterStore.from_url(
            url, prefix=prefix, timeout_seconds=timeout_seconds, **extra
        )
    from bandit_pipeline.online_store.redis import RedisStore

    return RedisStore.from_url(url, prefix=prefix, timeout_seconds=timeout_seconds, **extra)
