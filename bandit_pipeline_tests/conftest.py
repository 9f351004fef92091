"""Fixtures for real PostgreSQL and Redis servers, isolated per test run.

PostgreSQL: one fresh database per test session (dropped at the end), tables emptied
before each test. SQLite: a fresh file per test. Servers come from
BANDIT_TEST_POSTGRES_URL / BANDIT_TEST_REDIS_URL (``make test`` makes sure they answer).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from bandit_pipeline.accepted_warnings import accept_known_warnings
from bandit_pipeline.online_store import OnlineStore, open_store
from bandit_pipeline.settings import Settings, load_settings
from bandit_pipeline.warehouse import make_engine
from bandit_pipeline.warehouse.migrate import upgrade
from bandit_pipeline_tests.helpers import (
    REDIS_URL,
    WAREHOUSE_TABLES,
    delete_redis_keys,
    fresh_database,
    unique_name,
)


def pytest_configure(config: pytest.Config) -> None:
    # The accepted library warnings, as the product's processes filter them (pytest would
    # undo filters installed while it collects the test modules).
    accept_known_warnings()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so that a fixture can tell whether its
    test failed (the Dagster process tests then print the processes' logs)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL of a new, migrated database on the test server."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(_postgres_engine: Engine) -> Engine:
    """The session's PostgreSQL warehouse with every table emptied."""
    with _postgres_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(WAREHOUSE_TABLES)}"))
    return _postgres_engine


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    """A fresh, migrated SQLite warehouse file."""
    engine = make_engine(f"sqlite:///{tmp_path}/warehouse.db")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request) -> Engine:
    """Each warehouse engine in turn: core logic is tested on both."""
    return request.getfixturevalue(
        "pg_engine" if request.param == "postgresql" else "sqlite_engine"
    )


@pytest.fixture
def settings(engine: Engine) -> Settings:
    return load_settings(warehouse_url=engine.url.render_as_string(hide_password=False))


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test alone on the test Redis; its keys are deleted afterwards."""
    prefix = unique_name()
    yield prefix
    delete_redis_keys(prefix)


@pytest.fixture
def redis_store(redis_prefix: str) -> Iterator[OnlineStore]:
    store = open_store(REDIS_URL, prefix=redis_prefix, timeout_seconds=2.0)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[OnlineStore]:
    store = open_store(f"sqlite:///{tmp_path}/online_store.db")
    yield store
    store.close()


@pytest.fixture(params=["redis", "sqlite"])
def store(request) -> OnlineStore:
    """Each online store in turn: Redis (production) and SQLite (embedded default)."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local Spark (2 cores, 1 GB) for every Spark test of the session: a JVM costs
    seconds to start, and a process holds one Spark at a time."""
    from bandit_pipeline.warehouse.spark import start_session

    session = start_session("local[2]", str(tmp_path_factory.mktemp("spark-warehouse")))
    yield session
    session.stop()


@pytest.fixture
def new_warehouse(spark, tmp_path_factory):
    """A function that makes an empty Spark warehouse (database and directory) of its own
    on the session's Spark."""
    from bandit_pipeline.warehouse.spark import SparkWarehouse

    root = tmp_path_factory.mktemp("lakes")

    def make(**options) -> SparkWarehouse:
        name = f"bandit_{uuid.uuid4().hex[:8]}"
        return SparkWarehouse(spark, str(root / name), name, **options)

    return make


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """A Spark standalone cluster for the session (spark_cluster.py): a master and two
    workers of one core and 512 MiB each on loopback, stopped by process id at the end."""
    from bandit_pipeline_tests.spark_cluster import standalone_cluster

    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster")) as cluster:
        yield cluster
