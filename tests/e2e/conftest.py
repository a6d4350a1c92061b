"""Fixtures that run the real ``hotline`` command in a temp data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.support.client import Officer, Reporter
from tests.support.processes import HotlineProcess, free_port, hotline_env


@dataclass
class DevInstance:
    process: HotlineProcess
    data_dir: Path
    public: str
    internal: str
    admin_password: str

    @property
    def env(self) -> dict[str, str]:
        return self.process.env


def start_dev(data_dir: Path, public_port: int | None = None,
              internal_port: int | None = None) -> HotlineProcess:
    public_port = public_port or free_port()
    internal_port = internal_port or free_port()
    return HotlineProcess(["dev", "--public-port", str(public_port), "--internal-port",
                           str(internal_port)], hotline_env(data_dir)).start()


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevInstance]:
    process = start_dev(tmp_path / "data")
    try:
        yield DevInstance(process, tmp_path / "data",
                          "http://" + process.find(r"public\s*: http://(\S+?)/?$"),
                          "http://" + process.find(r"internal\s*: http://(\S+?)/?$"),
                          process.find(r"one-time password: (\S+)"))
    finally:
        process.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture
def reporter(dev: DevInstance, http: aiohttp.ClientSession) -> Reporter:
    return Reporter(http, dev.public)


@pytest.fixture
async def admin(dev: DevInstance, http: aiohttp.ClientSession) -> Officer:
    officer = Officer(http, dev.internal)
    await officer.login("admin", dev.admin_password)
    return officer
