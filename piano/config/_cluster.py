"""`ClusterConfig`: the ``[cluster]`` section of piano.toml — several daemons sharing the work.

```toml
[store]
backend = "postgres"                    # a cluster needs the shared store

[cluster]
node_id = "node-a"                      # unique in the cluster; empty: the host's name
partitions = 16                         # P: fixed for the cluster's life
standby = 1                             # each partition also consumed by this many standbys
heartbeat = 2.0                         # seconds between a node's heartbeats
lease_ttl = 10.0                        # a conversation's lease lapses this long unrenewed
handoff_timeout = 30.0                  # running turns a moving partition may finish

[cluster.rabbitmq]
url_env = "PIANO_RABBITMQ_URL"          # the AMQP URL is read from this variable, never the file
prefix = "piano"                        # queues <prefix>.p.NN, exchange <prefix>.events
```

Without a ``[cluster]`` section Piano is one process, exactly as before. With one, the store must
be PostgreSQL (`[store] backend = "postgres"`): the membership, the conversations' leases and
the inbox live there (see `piano.cluster` and docs/cluster.md). The AMQP URL holds a password,
so, like the DSN, it is read from the variable `url_env` names and redacted like every secret.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from typing import Annotated

import msgspec

from piano.config._errors import required_variable

__all__ = ["ClusterConfig", "ClusterRabbitMQConfig", "cluster_problems"]

Seconds = Annotated[float, msgspec.Meta(gt=0)]

NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
"""What a node id may be: it names queues' consumers, log lines and rows; no spaces or colons."""

PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""What a broker prefix may be (RabbitMQ allows more; these are safe in every tool)."""


class ClusterRabbitMQConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The broker the nodes share: doorbells to partitions' owners, events between nodes."""

    url_env: str = "PIANO_RABBITMQ_URL"
    """The variable holding the AMQP URL (never the URL itself: it may hold a password)."""
    prefix: str = "piano"
    """Names on the broker: partitions' quorum queues `<prefix>.p.NN`, the events exchange
    `<prefix>.events`; clusters sharing a broker (or a vhost) need different prefixes."""
    prefetch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
    """Doorbells a node holds unacknowledged per partition queue."""
    confirm_timeout: Seconds = 10.0
    """Seconds the broker has to confirm a doorbell before the message is refused."""
    events_queue_length: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    """Messages of other nodes' live events a node's own queue holds before the broker drops
    the oldest (each is one thread's events of one committed batch); what a node misses it
    reads back from the store."""

    def url(self, environ: Mapping[str, str] | None = None) -> str:
        """The AMQP URL from the environment; `ConfigError` (one line) if unset."""
        return required_variable(
            self.url_env,
            environ,
            key="cluster.rabbitmq.url_env",
            what="a cluster reads the broker's URL",
            example="amqp://user:password@host:5672/vhost",
        )

    @property
    def partition_prefix(self) -> str:
        """The prefix of the partitions' queue names (``piano.p`` → ``piano.p.00``)."""
        return f"{self.prefix}.p"

    @property
    def events_exchange(self) -> str:
        """The topic exchange live thread events cross between nodes on."""
        return f"{self.prefix}.events"


class ClusterConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Several daemons sharing one PostgreSQL store and one RabbitMQ broker; see the module
    documentation and docs/cluster.md."""

    node_id: str = ""
    """This daemon's name in the cluster, unique among its members (letters, digits, `_.-`);
    empty: the host's name."""
    partitions: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 16
    """P, how many partitions conversations are hashed into; the same on every node and
    fixed for the cluster's life (changing it reorders conversations in flight)."""
    standby: Annotated[int, msgspec.Meta(ge=0, le=10)] = 1
    """How many nodes besides its owner also subscribe to each partition, so the broker hands
    it over at once when the owner's connection drops."""
    heartbeat: Seconds = 2.0
    """Seconds between a node's heartbeats (its row in `nodes`, its leases' renewals)."""
    lease_ttl: Seconds = 10.0
    """Seconds a conversation's lease outlives its last renewal; a node that could not renew
    for this long stops its conversations (fences itself). At least twice `heartbeat`."""
    handoff_timeout: Seconds = 30.0
    """Seconds a node losing a partition to a new member lets its running turns finish before
    it interrupts them and releases their leases."""
    rabbitmq: ClusterRabbitMQConfig = msgspec.field(default_factory=ClusterRabbitMQConfig)

    def node(self) -> str:
        """This node's id: `node_id`, or the host's name."""
        return self.node_id or socket.gethostname()


def cluster_problems(cluster: ClusterConfig, store_backend: str) -> list[str]:
    """What is wrong with a ``[cluster]`` section beyond its types (``key: reason`` each)."""
    problems = []
    if store_backend != "postgres":
        problems.append(
            f'cluster: a cluster shares its store, so it needs [store] backend = "postgres" '
            f"(got {store_backend!r}): set it and export the DSN, or remove [cluster]"
        )
    if not NODE_ID.fullmatch(cluster.node()):
        problems.append(
            f"cluster.node_id: {cluster.node()!r} is not a node id: use 1 to 63 letters, "
            "digits, '_', '.' or '-', starting with a letter or digit"
        )
    if cluster.lease_ttl < 2 * cluster.heartbeat:
        problems.append(
            f"cluster.lease_ttl: {cluster.lease_ttl} is less than twice cluster.heartbeat "
            f"({cluster.heartbeat}): one late heartbeat would lose every lease; raise it"
        )
    if not PREFIX.fullmatch(cluster.rabbitmq.prefix):
        problems.append(
            f"cluster.rabbitmq.prefix: {cluster.rabbitmq.prefix!r} is not a prefix: use 1 to "
            "100 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return problems
