"""Choose and open adapters from settings: the one place that knows every adapter."""

from __future__ import annotations

from hotline.ports import Bus, Store
from hotline.settings import Settings, sqlite_path

__all__ = ["make_bus", "make_store"]


def make_store(settings: Settings) -> Store:
    if settings.store_url.startswith("sqlite:///"):
        from hotline.adapters.sqlite_store import SqliteStore

        return SqliteStore(sqlite_path(settings.store_url))
    from hotline.adapters.mongo_store import MongoStore

    return MongoStore.from_url(settings.store_url)


def make_bus(settings: Settings) -> Bus:
    if settings.bus_url.startswith("sqlite:///"):
        from hotline.adapters.sqlite_bus import SqliteBus

        return SqliteBus(sqlite_path(settings.bus_url),
                         delivery_limit=settings.bus_delivery_limit)
    from hotline.adapters.rabbit_bus import RabbitBus

    return RabbitBus(settings.bus_url, delivery_limit=settings.bus_delivery_limit)
