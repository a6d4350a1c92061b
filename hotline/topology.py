"""The bus topology as values, declared in one place for every bus adapter."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEAD_EXCHANGE", "EXCHANGE", "MAIL_OUTBOUND_QUEUE", "PARKING_QUEUE", "QUEUES",
           "ROUTER_QUEUE", "QueueSpec", "matches"]

EXCHANGE = "hotline"  # topic, durable
DEAD_EXCHANGE = "hotline.dead"  # fanout, durable: rejected and over-limit messages
PARKING_QUEUE = "hotline.parking"  # durable; an admin inspects and replays it
ROUTER_QUEUE = "hotline.router"
MAIL_OUTBOUND_QUEUE = "hotline.mail.outbound"  # consumed in the router process (issue 4)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    bindings: tuple[str, ...]
    quorum: bool = True


QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec(ROUTER_QUEUE, ("submission.*",)),
    QueueSpec(MAIL_OUTBOUND_QUEUE, ("mail.outbound",)),
)


def matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is one word, ``#`` zero or more."""
    def walk(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(walk(p[1:], k[i:]) for i in range(len(k) + 1))
        if not k:
            return False
        return (p[0] == "*" or p[0] == k[0]) and walk(p[1:], k[1:])
    return walk(pattern.split("."), routing_key.split("."))
