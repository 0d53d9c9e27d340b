"""The metrics server's health answer says which part is down."""

from __future__ import annotations

import aiohttp
import pytest

from actors import ActorSystem
from piano.config import MetricsConfig
from piano.metrics import METRICS, MetricsServer

pytestmark = pytest.mark.anyio


async def test_health_is_503_naming_what_is_down_and_metrics_still_answer() -> None:
    async with ActorSystem() as system:
        server = await system.spawn(MetricsServer(MetricsConfig(port=0)), name=METRICS)
        port = await server.call("port")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/health") as response:
                assert response.status == 503
                health = await response.json()
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                scrape = await response.text()
    assert health["ok"] is False
    assert health["codex"] is False
    assert health["tree"] is False
    assert "piano_codex_up 0.0" in scrape
    assert 'piano_actor_mailbox_length{actor="metrics"} 0.0' in scrape
