"""Shared fixtures: real SQLite files and real PostgreSQL schemas, one fresh database per test.

Hypothesis profiles: "dev" (the default: Hypothesis's own example counts, a short domain
simulation) and "ci" (more examples and longer simulations, derandomized so a failure on
CI is the same failure locally, with the blob that reproduces it printed). CI=true selects
"ci"; HYPOTHESIS_PROFILE=dev|ci chooses either explicitly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from quotepart.workspace import Workspace, init_workspace

POSTGRES_URL = os.environ.get(
    "QUOTEPART_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# dev keeps Hypothesis's 100 examples for tests that do not choose their own; deadlines
# are off everywhere (timings belong in bench/, and the machines running tests are shared).
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,  # a failure on CI is the same failure on a laptop
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if ON_CI else "dev")
settings.load_profile(PROFILE)


def _postgres_reason() -> str | None:
    try:
        engine = sqlalchemy.create_engine(
            POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1),
            connect_args={"connect_timeout": 3},
        )
        with engine.connect():
            pass
        engine.dispose()
    except sqlalchemy.exc.OperationalError as exc:
        return f"PostgreSQL at {POSTGRES_URL} unreachable: {str(exc.orig).strip().splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def postgres_available() -> None:
    reason = _postgres_reason()
    if reason is not None:
        if ON_CI:
            pytest.fail(f"CI=true but {reason}: PostgreSQL tests must run on CI")
        pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_available: None) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema, dropped afterwards."""
    schema = f"qp_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


class FakeClock:
    """A deterministic clock: each call is one millisecond after the last."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None for the embedded SQLite default, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def ws(tmp_path: Path, database_url: str | None, clock: FakeClock) -> Iterator[Workspace]:
    """An empty workspace on each backend: the embedded SQLite file, then PostgreSQL."""
    with init_workspace(tmp_path / "ws", database_url=database_url, clock=clock) as workspace:
        yield workspace
