"""Fixtures of tests/agents (OpenAI agents against the fake server), for the image tests."""

from __future__ import annotations

from tests.agents.conftest import agents

__all__ = ["agents"]
