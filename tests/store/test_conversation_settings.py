"""A conversation's model and effort (``/model``, ``/effort``) are kept by either store backend
and read back by its reader: written through the `StoreWriter`, replaced by a later choice,
unknown conversations read as the defaults."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from actors import ActorSystem
from piano.store import (
    ConversationSettings,
    PostgresBackend,
    PostgresReader,
    SetConversationSettings,
    StoreReader,
    StoreWriter,
)
from tests.postgres import pg_dsn

__all__ = ["pg_dsn"]

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_conversations_choice_is_kept_replaced_and_read_back(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        writer_target: object = tmp_path / "piano.db"
    else:
        dsn = request.getfixturevalue("pg_dsn")

        async def writer_target() -> PostgresBackend:
            return await PostgresBackend.open(dsn)

    async with ActorSystem() as system:
        writer = await system.spawn(StoreWriter(writer_target))  # type: ignore[arg-type]
        await writer.call(SetConversationSettings("tg", "chat:1", "default", "gpt-6-luna", None))
        await writer.call(SetConversationSettings("tg", "chat:1", "default", "gpt-6-luna", "high"))
        await writer.call(SetConversationSettings("tg", "chat:2", "default", None, "low"))
    reader = StoreReader(tmp_path / "piano.db") if backend == "sqlite" else PostgresReader(dsn)
    try:
        read = await asyncio.to_thread(reader.conversation_settings, "tg", "chat:1", "default")
        assert read == ConversationSettings(model="gpt-6-luna", effort="high")
        read = await asyncio.to_thread(reader.conversation_settings, "tg", "chat:2", "default")
        assert read == ConversationSettings(model=None, effort="low")
        read = await asyncio.to_thread(reader.conversation_settings, "tg", "chat:1", "other")
        assert read == ConversationSettings()
    finally:
        reader.close()
