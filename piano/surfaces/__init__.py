"""Chat surfaces: the `Surface` interface, delivery of thread events, and the surfaces."""

from piano.surfaces._surface import ALL_THREADS, Context, Surface, deliver, subscribe, unsubscribe

__all__ = ["ALL_THREADS", "Context", "Surface", "deliver", "subscribe", "unsubscribe"]
