"""An Elixir-style `Registry`: keys mapped to actors, unique or duplicate, cleaned up on exit.

```python
topics = Registry(keys="duplicate")
topics.register("thread:42", self.ref, value={"since": now})   # inside an actor
topics.dispatch("thread:42", lambda entries: [ref.send(event) for ref, _ in entries])
```

With ``keys="unique"`` a key has at most one live actor (`NameTaken` otherwise); with
``"duplicate"`` any number, and the same actor may register a key more than once, as in Elixir.
An actor's entries are removed when it exits, before its monitors are notified, so a lookup
never returns an actor known to be dead. Lookups return entries in registration order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from actors._reasons import ActorExited, NameTaken
from actors._ref import ActorRef

__all__ = ["Registry"]


class Registry:
    """Map keys to (actor, value) entries; see the module documentation."""

    def __init__(self, *, keys: Literal["unique", "duplicate"]) -> None:
        if keys not in ("unique", "duplicate"):
            raise ValueError(f'keys must be "unique" or "duplicate", got {keys!r}')
        self.keys_mode = keys
        self._entries: dict[object, list[tuple[ActorRef, Any]]] = {}

    def register(self, key: object, ref: ActorRef, value: Any = None) -> None:
        """Register `ref` under `key` with `value`. `key` must be hashable."""
        actor = ref._actor
        if actor._exit_reason is not None:
            raise ActorExited(ref, actor._exit_reason)
        entries = self._entries.get(key)
        if entries is None:
            entries = self._entries[key] = []
        elif self.keys_mode == "unique":
            raise NameTaken(f"{key!r} is registered to {entries[0][0]!r}")
        entries.append((ref, value))
        if actor._registrations is None:
            actor._registrations = []
        actor._registrations.append((self, key))

    def unregister(self, key: object, ref: ActorRef) -> None:
        """Remove every entry of `ref` under `key`."""
        self._drop(key, ref)
        registrations = ref._actor._registrations
        if registrations:
            ref._actor._registrations = [r for r in registrations if r != (self, key)]

    def lookup(self, key: object) -> list[tuple[ActorRef, Any]]:
        """The (actor, value) entries under `key`, oldest first."""
        return list(self._entries.get(key, ()))

    def keys(self, ref: ActorRef) -> list[object]:
        """The keys `ref` is registered under in this registry."""
        registrations = ref._actor._registrations or ()
        return [key for registry, key in registrations if registry is self]

    def entries(self) -> list[tuple[object, ActorRef, Any]]:
        """Every (key, actor, value) entry, keys in registration order (as Elixir's
        ``Registry.select`` matching everything)."""
        return [(key, ref, value) for key, found in self._entries.items() for ref, value in found]

    def count(self, key: object | None = None) -> int:
        """Entries under `key`, or in the whole registry when `key` is None."""
        if key is None:
            return sum(len(entries) for entries in self._entries.values())
        return len(self._entries.get(key, ()))

    def dispatch(
        self, key: object, callback: Callable[[list[tuple[ActorRef, Any]]], object]
    ) -> None:
        """Call `callback` with the entries under `key`, if any (``Registry.dispatch``)."""
        entries = self._entries.get(key)
        if entries:
            callback(list(entries))

    def update_value(self, key: object, ref: ActorRef, update: Callable[[Any], Any]) -> Any:
        """Replace the value of `ref`'s entry under a unique `key` with ``update(old)``."""
        if self.keys_mode != "unique":
            raise ValueError("update_value works on unique registries only, as in Elixir")
        entries = self._entries.get(key)
        if not entries or entries[0][0] != ref:
            raise KeyError(key)
        new = update(entries[0][1])
        entries[0] = (ref, new)
        return new

    def _drop(self, key: object, ref: ActorRef) -> None:
        entries = self._entries.get(key)
        if entries is None:
            return
        kept = [entry for entry in entries if entry[0] != ref]
        if kept:
            self._entries[key] = kept
        else:
            del self._entries[key]
