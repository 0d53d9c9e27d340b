"""The optional dependency: aio-pika (and aiormq, its protocol layer), imported in one place so a
missing package gives one clear error instead of a traceback from deep inside a module."""

from __future__ import annotations

try:
    import aio_pika
    import aiormq
    import aiormq.abc
    import aiormq.exceptions
except ImportError as exc:  # pragma: no cover - exercised only without the package
    raise ImportError(
        "actors.pipeline.rabbitmq needs aio-pika: install it with "
        "`pip install 'aio-pika>=10.2,<11'` (Piano's requirements.lock pins it)"
    ) from exc

__all__ = ["aio_pika", "aiormq", "redact"]


def redact(url: str) -> str:
    """The broker URL without its password, for logs and errors."""
    try:
        parsed = aio_pika.connection.make_url(url)
    except Exception:
        return "<unparsable AMQP URL>"
    if parsed.password is not None:
        parsed = parsed.with_password("***")
    return str(parsed)
