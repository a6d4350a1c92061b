"""The real ``hotline dev`` process driven from outside, as a reporter and an officer."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import pytest

from tests.e2e.conftest import DevInstance
from tests.support.client import Officer, Reporter
from tests.support.processes import run_cli

pytestmark = pytest.mark.e2e

PAYLOAD = {
    "title": "工程款回扣",
    "description": "项目经理张三在2026年3月收取分包商回扣约人民币12万元。",
    "subjects": [{"name": "张三", "unit": "GD", "position": "项目经理"}],
    "amount": {"value": 120000, "currency": "CNY"},
}


async def wait_for_reference(reporter: Reporter, receipt: str, wait: float = 20.0
                             ) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        status, doc = await reporter.followup(receipt)
        if status == 200 and doc.get("reference"):
            return doc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"receipt never resolved: {status} {doc}")
        await asyncio.sleep(0.2)


async def test_sealed_report_reaches_officer_decrypted(
        dev: DevInstance, reporter: Reporter, admin: Officer) -> None:
    """A report sealed by an independent client appears decrypted, referenced and audited."""
    status, accepted = await reporter.report(PAYLOAD, unit="GD")
    assert 202 == status
    followup = await wait_for_reference(reporter, accepted["receipt"])
    assert "received" == followup["status"]
    assert followup["reference"].startswith("R-2026-") or followup["reference"].startswith("R-")

    cases = await admin.all_cases()
    [summary] = [c for c in cases if c["reference"] == followup["reference"]]
    # A project manager (middle manager) as subject makes it "high" (DOMAIN.md triage).
    assert ("report", "GD", "high", "web") == (
        summary["kind"], summary["unit"], summary["severity"], summary["channel"])

    status, case = await admin.get(f"/api/v1/cases/{summary['id']}?reason=triage")
    assert 200 == status
    assert PAYLOAD == case["content"]
    assert case["triage"]["rules"]
    assert "acknowledged" == case["workflow"]["state"]
    assert case["workflow"]["deadlines"]

    status, audit = await admin.get(f"/api/v1/cases/{summary['id']}/audit")
    assert 200 == status
    assert ["submission.received", "case.opened", "content.opened"] == [
        e["type"] for e in audit["events"]]
    assert audit["events"][1]["prev_hash"] == audit["events"][0]["hash"]

    status, verdict = await admin.get("/api/v1/audit/verify")
    assert (200, True) == (status, verdict["ok"])
    cli = run_cli(["audit", "verify"], dev.env)
    assert 0 == cli.returncode, cli.stdout + cli.stderr
    assert "audit intact" in cli.stdout


async def test_reply_and_followup_round_trip(
        dev: DevInstance, reporter: Reporter, admin: Officer) -> None:
    """An officer's reply is readable with the receipt and the reporter's addition reaches
    the officer."""
    status, accepted = await reporter.report(PAYLOAD)
    assert 202 == status
    followup = await wait_for_reference(reporter, accepted["receipt"])
    cases = await admin.all_cases()
    [summary] = [c for c in cases if c["reference"] == followup["reference"]]
    assert "GD" == summary["unit"]  # no unit given, but the named subject works in GD

    status, _ = await admin.post(f"/api/v1/cases/{summary['id']}/messages",
                                 {"body": "請補充分包合同編號。"})
    assert 403 == status  # admin is not a handler
    run = run_cli(["officer", "add", "wang", "--unit", "HQ", "--role", "officer",
                   "--password-stdin"], dev.env, stdin="correct horse battery staple\n")
    assert 0 == run.returncode, run.stdout + run.stderr
    officer = Officer(admin.session, admin.base)
    await officer.login("wang", "correct horse battery staple")
    status, _ = await officer.post(f"/api/v1/cases/{summary['id']}/messages",
                                   {"body": "請補充分包合同編號。"})
    assert 201 == status

    status, login = await reporter.post("/api/v1/followup/login",
                                        {"receipt": accepted["receipt"].lower()})
    assert 200 == status
    status, doc = await reporter.followup(accepted["receipt"])
    assert [("officer", "請補充分包合同編號。")] == [(m["from"], m["body"])
                                             for m in doc["messages"]]
    status, _ = await reporter.post("/api/v1/followup/messages", {"body": "合同編號 GD-2026-17"},
                                    token=login["token"])
    assert 202 == status
    for _ in range(100):
        status, case = await officer.get(f"/api/v1/cases/{summary['id']}")
        if len(case["messages"]) == 2:
            break
        await asyncio.sleep(0.1)
    assert [("officer", "請補充分包合同編號。"), ("reporter", "合同編號 GD-2026-17")] == [
        (m["from"], m["body"]) for m in case["messages"]]


async def test_complaint_is_sealed_at_intake_and_opened_for_officer(
        dev: DevInstance, reporter: Reporter, admin: Officer) -> None:
    """A complaint posted in clear is sealed by intake and readable only through casework."""
    complaint = {"name": "Chan Tai Man", "email": "chan@example.hk", "category": "delay",
                 "subject": "Installation late", "description": "The fibre line is 3 weeks late.",
                 "unit": "HK", "pow": await reporter.pow()}
    status, accepted = await reporter.post("/api/v1/complaints", complaint)
    assert 202 == status
    followup = await wait_for_reference(reporter, accepted["receipt"])
    assert followup["reference"].startswith("C-")
    raw = sqlite3.connect(dev.data_dir / "hotline.sqlite3").execute(
        "SELECT doc FROM cases").fetchall()
    assert all("fibre line" not in row[0] and "chan@example.hk" not in row[0] for row in raw)
    [summary] = [c for c in await admin.all_cases() if c["reference"] == followup["reference"]]
    status, case = await admin.get(f"/api/v1/cases/{summary['id']}")
    assert "The fibre line is 3 weeks late." == case["content"]["description"]


async def test_tampered_audit_event_is_named_by_verify(
        dev: DevInstance, reporter: Reporter) -> None:
    """Changing one stored audit event makes `hotline audit verify` exit 1 naming it."""
    status, accepted = await reporter.report(PAYLOAD)
    assert 202 == status
    followup = await wait_for_reference(reporter, accepted["receipt"])
    db = sqlite3.connect(dev.data_dir / "hotline.sqlite3")
    with db:
        db.execute("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2")
    db.close()
    run = run_cli(["audit", "verify"], dev.env)
    assert 1 == run.returncode
    assert f"case {followup['reference']}" in run.stdout
    assert "event seq 2" in run.stdout

    db = sqlite3.connect(dev.data_dir / "hotline.sqlite3")
    with db:
        db.execute("UPDATE audit_events SET actor = 'router' WHERE seq = 2")
        db.execute("DELETE FROM audit_events WHERE seq = 2")
    db.close()
    run = run_cli(["audit", "verify", "--case", followup["reference"]], dev.env)
    assert 1 == run.returncode
    assert "event seq 2" in run.stdout


async def test_logs_carry_no_report_text_receipt_or_secret(
        dev: DevInstance, reporter: Reporter, admin: Officer) -> None:
    """The process's log lines never contain report text, receipts, passwords or addresses."""
    status, accepted = await reporter.report(PAYLOAD)
    assert 202 == status
    await wait_for_reference(reporter, accepted["receipt"])
    await admin.all_cases()
    dev.process.stop()
    await asyncio.sleep(0.2)  # let the drain thread take the last lines
    lines = [line for line in dev.process.output if line.startswith("{")]
    assert lines, "expected JSON log lines"
    joined = "\n".join(lines)
    for secret in (PAYLOAD["description"], "张三", accepted["receipt"], dev.admin_password,
                   "127.0.0.1"):
        assert secret not in joined
    assert any(json.loads(line).get("event") == "case.opened" for line in lines)
