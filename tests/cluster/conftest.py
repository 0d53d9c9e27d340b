"""Fixtures and helpers of the cluster's tests: the machine's RabbitMQ (`amqp_url`, `broker`),
PostgreSQL (`pg_dsn`, `pg_cluster`, `database`), a second set of Codex directories
(`other_dirs`), and `two_nodes`, the configurations of two `piano run` nodes of one cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest

from tests.acceptance.daemon import write_config
from tests.acceptance.test_surfaces import free_port
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, make_codex_dirs
from tests.pipeline.rabbitmq.conftest import amqp_url, broker
from tests.postgres import fresh_database, pg_cluster, pg_dsn
from tests.web.conftest import TOKEN

__all__ = ["amqp_url", "broker", "pg_cluster", "pg_dsn"]


DSN_ENV = "PIANO_ACCEPTANCE_STORE_DSN"
AMQP_ENV = "PIANO_ACCEPTANCE_AMQP_URL"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture
def other_dirs() -> Iterator[CodexDirs]:
    made = make_codex_dirs()
    yield made
    shutil.rmtree(made.root, ignore_errors=True)


def node_config(node_id: str, prefix: str) -> str:
    """The piano.toml lines that make a daemon node `node_id` of the cluster named `prefix`."""
    return (
        f'[store]\nbackend = "postgres"\ndsn_env = "{DSN_ENV}"\n'
        f'[cluster]\nnode_id = "{node_id}"\n'
        f'[cluster.rabbitmq]\nurl_env = "{AMQP_ENV}"\nprefix = "{prefix}"\n'
    )


@dataclass
class Cluster:
    """Node A (no web surface) and node B (the web surface on `web_port`), their configs,
    state directories and environment, under a broker prefix of their own."""

    config_a: Path
    config_b: Path
    state_a: Path
    state_b: Path
    web_port: int
    env: dict[str, str]


@contextlib.asynccontextmanager
async def two_nodes(
    dirs: CodexDirs,
    other_dirs: CodexDirs,
    provider: FakeResponsesProvider,
    database: str,
    amqp_url: str,
) -> AsyncIterator[Cluster]:
    """The two nodes' configurations; their exchange is deleted afterwards."""
    prefix = f"piano-test.{uuid.uuid4().hex[:10]}"
    web_port = free_port()
    try:
        yield Cluster(
            write_config(dirs, provider, node_config("node-a", prefix)),
            write_config(
                other_dirs,
                provider,
                f"[web]\nenabled = true\nport = {web_port}\n"
                f"[tools.mcp]\nport = {free_port()}\n" + node_config("node-b", prefix),
            ),
            dirs.root / "state",
            other_dirs.root / "state",
            web_port,
            {**os.environ, DSN_ENV: database, AMQP_ENV: amqp_url, "PIANO_WEB_TOKEN": TOKEN},
        )
    finally:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(f"{prefix}.events")
