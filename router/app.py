"""The router process: the consumer plus ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from hotline.logging import get_logger
from hotline.topology import ROUTER_QUEUE
from hotline.web import error_middleware, health_routes
from router.worker import Router

__all__ = ["create_app", "run_consumer"]

_log = get_logger("hotline.router")
ROUTER = web.AppKey("router", Router)


async def run_consumer(router: Router, *, prefetch: int = 32) -> None:
    """Consume the router queue until cancelled; a crashed consumer restarts after a pause."""
    while True:
        try:
            await router.bus.consume(ROUTER_QUEUE, router.handle, prefetch=prefetch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.error("consumer.crashed", error_type=type(exc).__name__)
            await asyncio.sleep(1.0)


def create_app(router: Router) -> web.Application:
    app = web.Application(middlewares=[error_middleware("router")])
    app[ROUTER] = router

    async def ready() -> dict[str, bool]:
        return {"store": await router.store.ping(), "bus": await router.bus.ping()}

    async def consumer(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run_consumer(router))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(consumer)
    app.add_routes(health_routes(ready))
    return app
