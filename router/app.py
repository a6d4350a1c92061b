"""The router process: the consumer plus ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from hotline.logging import get_logger
from hotline.settings import Settings
from hotline.topology import ROUTER_QUEUE
from hotline.web import error_middleware, health_routes
from router.clocks import ClockRunner
from router.periodic import periodic_jobs
from router.worker import Router

__all__ = ["clock_runner", "create_app", "run_consumer"]

_log = get_logger("hotline.router")
ROUTER = web.AppKey("router", Router)


async def run_consumer(router: Router, *, prefetch: int = 32) -> None:
    """Consume the router queue until cancelled; a crashed consumer restarts after a pause."""
    while True:
        try:
            await router.bus.consume(ROUTER_QUEUE, router.handle, prefetch=prefetch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the consumer must outlive bus hiccups
            _log.error("consumer.crashed", error_type=type(exc).__name__)
            await asyncio.sleep(1.0)


def clock_runner(router: Router, settings: Settings | None = None) -> ClockRunner:
    """The deadline clock, followed by survey expiry and (with settings) the purge."""
    return ClockRunner(router.store, router.bus, router.org, router.workflows,
                       jobs=periodic_jobs(router, settings))


def create_app(router: Router, settings: Settings | None = None) -> web.Application:
    app = web.Application(middlewares=[error_middleware("router")])
    app[ROUTER] = router

    async def ready() -> dict[str, bool]:
        return {"store": await router.store.ping(), "bus": await router.bus.ping()}

    async def consumer(_app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(run_consumer(router)),
                 asyncio.create_task(clock_runner(router, settings).run())]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(consumer)
    app.add_routes(health_routes(ready))
    return app
