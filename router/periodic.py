"""The router's periodic jobs besides the deadline clock: survey expiry and the purge.

Both run after the clock runner's sweeps (router/clocks.py), each at most once per its
own interval: expiring surveys and purging cases past retention are slow-moving, and
their queries need not run every 30 seconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from hotline.crypto import KeyRing
from hotline.mail.outbound import OutboxDelivery
from hotline.retention import Purger, make_blob_store
from hotline.services import load_keyring
from hotline.settings import Settings
from router.survey import SurveyDesk
from router.worker import Router

__all__ = ["periodic_jobs"]

SURVEY_EVERY = timedelta(minutes=5)
PURGE_EVERY = timedelta(hours=1)


@dataclass
class Throttled:
    """Run ``job`` when at least ``every`` passed since its last run."""

    job: Callable[[datetime], Awaitable[object]]
    every: timedelta
    __name__: str = "job"
    _last: datetime | None = None

    async def __call__(self, now: datetime) -> object:
        if self._last is not None and now - self._last < self.every:
            return None
        self._last = now
        return await self.job(now)


def periodic_jobs(router: Router, settings: Settings | None
                  ) -> list[Callable[[datetime], Awaitable[object]]]:
    """Survey expiry always; the purge when the process has settings (a blob store)."""
    jobs: list[Callable[[datetime], Awaitable[object]]] = [Throttled(
        SurveyDesk.of(router.store, router.workflows, router.master).expire, SURVEY_EVERY,
        "survey_expiry")]
    if settings is not None:
        async def keyring() -> KeyRing:
            return await load_keyring(router.store, router.master)

        # The outbox even with a relay configured: files from before it stay otherwise.
        purger = Purger(router.store, make_blob_store(settings, router.store), keyring,
                        outbox=OutboxDelivery(settings.data_dir / "outbox"))
        jobs.append(Throttled(purger.run, PURGE_EVERY, "purge"))
    return jobs
