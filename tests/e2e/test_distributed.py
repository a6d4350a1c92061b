"""The distributed mode: separate intake, router and casework processes over RabbitMQ."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import aiohttp
import pytest

from tests.e2e.test_embedded import PAYLOAD, wait_for_reference
from tests.support.client import Officer, Reporter
from tests.support.processes import HotlineProcess, free_port, hotline_env, run_cli

pytestmark = pytest.mark.e2e

PASSWORD = "distributed officer passphrase"


@dataclass
class Cluster:
    env: dict[str, str]
    amqp_url: str
    store_path: Path
    intake: HotlineProcess
    router: HotlineProcess
    casework: HotlineProcess
    intake_url: str
    casework_url: str
    router_url: str

    def start_router(self) -> None:
        self.router = HotlineProcess(["router", "--port", str(free_port())], self.env).start()


@pytest.fixture
def cluster(tmp_path: Path, amqp_url: str) -> Iterator[Cluster]:
    store_path = tmp_path / "shared" / "store.sqlite3"
    env = hotline_env(tmp_path / "data", HOTLINE_STORE_URL=f"sqlite:///{store_path}",
                      HOTLINE_BUS_URL=amqp_url,
                      HOTLINE_MASTER_KEY_FILE=str(tmp_path / "secrets" / "master.key"),
                      HOTLINE_RECEIPT_KEY_FILE=str(tmp_path / "secrets" / "receipt.key"))
    rotate = run_cli(["keys", "rotate"], env)
    assert 0 == rotate.returncode, rotate.stdout + rotate.stderr
    add = run_cli(["officer", "add", "hq-officer", "--unit", "HQ", "--role", "officer",
                   "--password-stdin"], env, stdin=PASSWORD + "\n")
    assert 0 == add.returncode, add.stdout + add.stderr
    intake_port, casework_port = free_port(), free_port()
    processes: list[HotlineProcess] = []
    try:
        intake = HotlineProcess(["intake", "--port", str(intake_port)], env).start()
        processes.append(intake)
        router_port = free_port()
        router = HotlineProcess(["router", "--port", str(router_port)], env).start()
        processes.append(router)
        casework = HotlineProcess(["casework", "--port", str(casework_port)], env).start()
        processes.append(casework)
        found = Cluster(env, amqp_url, store_path, intake, router, casework,
                        f"http://127.0.0.1:{intake_port}", f"http://127.0.0.1:{casework_port}",
                        f"http://127.0.0.1:{router_port}")
        yield found
        processes.append(found.router)
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16),
                                     timeout=aiohttp.ClientTimeout(total=20)) as http:
        yield http


async def test_report_flows_through_rabbitmq_to_casework(
        cluster: Cluster, session: aiohttp.ClientSession) -> None:
    """A sealed report posted to intake is opened by the router and read in casework."""
    reporter = Reporter(session, cluster.intake_url)
    status, accepted = await reporter.report(PAYLOAD, unit="GD")
    assert 202 == status
    followup = await wait_for_reference(reporter, accepted["receipt"])
    officer = Officer(session, cluster.casework_url)
    await officer.login("hq-officer", PASSWORD)
    [summary] = [c for c in await officer.all_cases() if c["reference"] == followup["reference"]]
    status, case = await officer.get(f"/api/v1/cases/{summary['id']}")
    assert (200, PAYLOAD) == (status, case["content"])
    verify = run_cli(["audit", "verify"], cluster.env)
    assert 0 == verify.returncode, verify.stdout
    for base in (cluster.intake_url, cluster.router_url, cluster.casework_url):
        for path, status in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200)):
            async with session.get(base + path) as resp:
                assert (base + path, status) == (base + path, resp.status)
    async with session.get(cluster.router_url + "/metrics") as resp:
        assert "hotline_cases_opened_total" in await resp.text()


async def test_router_sigkill_mid_burst_loses_and_doubles_nothing(
        cluster: Cluster, session: aiohttp.ClientSession) -> None:
    """Kill the router while a burst is queued and in flight; restart; each 202 is one case."""
    reporter = Reporter(session, cluster.intake_url)
    accepted: list[dict[str, str]] = []
    killed = False

    async def one(index: int) -> None:
        nonlocal killed
        status, doc = await reporter.report({**PAYLOAD, "title": f"burst {index}"})
        assert 202 == status  # intake and broker stay up: every submission must be taken
        accepted.append(doc)
        if len(accepted) == 15 and not killed:
            killed = True
            cluster.router.kill()

    await asyncio.gather(*(one(i) for i in range(60)))
    assert killed
    cluster.start_router()
    references = [(await wait_for_reference(reporter, doc["receipt"], wait=60))["reference"]
                  for doc in accepted]
    assert 60 == len(set(references))
    import sqlite3

    db = sqlite3.connect(cluster.store_path)
    stored = [row[0] for row in db.execute("SELECT submission_id FROM cases")]
    db.close()
    assert sorted({doc["submission_id"] for doc in accepted}) == sorted(stored)


async def test_poison_message_is_parked_and_router_keeps_going(
        cluster: Cluster, session: aiohttp.ClientSession) -> None:
    """A malformed message on the queue lands in the parking queue; later reports still open."""
    connection = await aio_pika.connect(cluster.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("hotline")
        await exchange.publish(aio_pika.Message(b"{this is not a submission",
                                                message_id="poison-message-1",
                                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                               routing_key="submission.report")
    reporter = Reporter(session, cluster.intake_url)
    status, accepted = await reporter.report(PAYLOAD)
    assert 202 == status
    await wait_for_reference(reporter, accepted["receipt"])
    for _ in range(50):
        listed = run_cli(["queue", "dead", "list"], cluster.env)
        if "poison-message-1" in listed.stdout:
            break
        await asyncio.sleep(0.2)
    assert "poison-message-1" in listed.stdout, listed.stdout + listed.stderr
