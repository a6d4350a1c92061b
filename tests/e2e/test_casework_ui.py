"""The officers' pages in Chromium against a real ``hotline dev``: sign-in with TOTP,
queue, audited content open, an identity disclosure denied then approved, dashboard and
audit pages — a screenshot of each page, kept in test-artifacts/casework/."""

from __future__ import annotations

import asyncio
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.e2e.conftest import DevInstance
from tests.support.client import Officer, Reporter
from tests.support.officer_browser import OfficerBrowser, act, chromium

pytestmark = pytest.mark.e2e

IDENTITY = {"name": "王小明", "phone": "+86 138 0000 0000"}
FACTS = "项目经理在分包结算中收取回扣"


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    path: Path = request.config.rootpath / "test-artifacts" / "casework" / request.node.name[5:40]
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


async def a_case(admin: Officer, reporter: Reporter, facts: str = FACTS,
                 category: str = "corruption") -> dict[str, object]:
    status, _ = await reporter.report({"description": facts, "identity": IDENTITY},
                                      category=category, unit="GD")
    assert 202 == status
    for _ in range(100):
        cases = await admin.all_cases()
        if cases:
            return cases[0]
        await asyncio.sleep(0.1)
    raise AssertionError("the report did not become a case")


async def test_officers_work_a_real_name_report_in_the_browser(
        dev: DevInstance, reporter: Reporter, admin: Officer, shots: Path) -> None:
    """TOTP sign-in, audited open, disclosure denied then approved, shown to the requester."""
    case = await a_case(admin, reporter)
    passwords = {}
    for name, role in (("handler", "officer"), ("chief", "supervisor")):
        status, created = await admin.post("/api/v1/accounts", {
            "username": name, "role": role, "unit": str(case["unit"])})
        assert 201 == status, created
        passwords[name] = created["one_time_password"]
    async with chromium() as browser:
        handler_ctx, chief_ctx = await browser.new_context(), await browser.new_context()
        handler = OfficerBrowser(await handler_ctx.new_page(), dev.internal, shots, "handler")
        chief = OfficerBrowser(await chief_ctx.new_page(), dev.internal, shots, "chief")

        await handler.sign_in("handler", passwords["handler"])
        cookie = next(c for c in await handler_ctx.cookies() if c["name"] == "hotline_session")
        assert (True, "Strict") == (cookie["httpOnly"], cookie["sameSite"])
        await handler.shot("queue")
        await handler.page.click(f"text={case['reference']}")
        await handler.shot("case")
        assert FACTS not in await handler.page.content()  # not opened yet
        await handler.page.fill("#reason", "first assessment")
        await handler.page.click("#content button")
        assert FACTS in (await handler.page.text_content("#case-content") or "")
        assert IDENTITY["name"] not in await handler.page.content()
        await handler.shot("case-opened")
        await handler.page.fill("#disclosure-reason", "to arrange a protected interview")
        await handler.page.click("#disclosure form[action$='/disclosures'] button")
        await handler.shot("disclosure-requested")

        await chief.sign_in("chief", passwords["chief"])  # enrols TOTP on the way
        await chief.sign_out()
        await chief.sign_in("chief", passwords["chief"])  # and now signs in with a code
        await chief.page.goto(f"{dev.internal}/ui/disclosures")
        await chief.shot("disclosures-pending")
        await chief.page.fill("#pending input[name=note]", "not before the first interview")
        await chief.page.click("#pending button[value=deny]")
        await chief.shot("disclosure-denied")

        await handler.page.goto(f"{dev.internal}/ui/cases/{case['id']}")
        assert "denied" in (await handler.page.text_content("#disclosure") or "")
        await handler.page.fill("#disclosure-reason", "interview scheduled, protection agreed")
        await handler.page.click("#disclosure form[action$='/disclosures'] button")
        await chief.page.goto(f"{dev.internal}/ui/disclosures")
        await chief.page.click("#pending button[value=approve]")
        await chief.shot("disclosure-approved")

        await handler.page.goto(f"{dev.internal}/ui/cases/{case['id']}")
        await handler.page.click("#show-identity")
        assert IDENTITY["name"] in (await handler.page.text_content("#identity") or "")
        await handler.shot("identity")

        await chief.page.goto(f"{dev.internal}/ui/cases/{case['id']}")
        assert IDENTITY["name"] not in await chief.page.content()
        await chief.page.goto(f"{dev.internal}/ui/dashboard")
        await chief.shot("dashboard")
        today = datetime.now(UTC)
        await chief.page.fill("#quarterly-export input[name=quarter]",
                              f"{today.year}Q{(today.month - 1) // 3 + 1}")
        async with chief.page.expect_download() as download:
            await chief.page.click("#export-pdf")
        await (await download.value).save_as(shots / "quarterly.pdf")
        assert b"%PDF-" == (await asyncio.to_thread((shots / "quarterly.pdf").read_bytes))[:5]
        await chief.page.goto(f"{dev.internal}/ui/audit")
        assert "Intact" in (await chief.page.text_content("#verdict") or "")
        await chief.shot("audit")
        await handler.sign_out()
        await handler.page.goto(f"{dev.internal}/ui/queue")
        assert handler.page.url.endswith("/ui/login")

    status, trail = await admin.get(f"/api/v1/cases/{case['id']}/audit")
    types = [e["type"] for e in trail["events"]]
    assert ["identity.disclosure_requested", "identity.disclosure_denied",
            "identity.disclosure_requested", "identity.disclosure_approved",
            "identity.opened"] == [t for t in types if t.startswith("identity.")]
    assert "content.opened" in types


SURVEY_LINK = re.compile(r"(http://\S+/survey/[A-Za-z0-9_-]{43}\?lang=[A-Za-z-]+)")


async def answer_survey(browser: Browser, dev: DevInstance, reporter: Reporter,
                        receipt: str) -> None:
    """Read the link on the follow-up (sealed to the receipt), answer 5 at 360 px wide;
    screenshots in test-artifacts/browser/."""
    status, view = await reporter.followup(receipt)
    assert 200 == status
    link = next(m.group(1) for m in (SURVEY_LINK.search(x["body"]) for x in view["messages"])
                if m)
    assert link.startswith(dev.public)
    context = await browser.new_context(java_script_enabled=False, locale="zh-CN",
                                        viewport={"width": 360, "height": 740})
    page = await context.new_page()
    await page.goto(link)
    assert "zh-Hans" == await page.get_attribute("html", "lang")
    assert 360 >= await page.evaluate("document.documentElement.scrollWidth")
    await page.check("#rating-5")
    await page.fill("#comment", "退款很快，谢谢")
    shots = Path(__file__).parents[2] / "test-artifacts" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shots / "survey-zh-Hans.png"), full_page=True)
    await page.click("form.survey button[type=submit]")
    assert "谢谢" in (await page.text_content("h1") or "")
    await page.screenshot(path=str(shots / "survey-thanks-zh-Hans.png"), full_page=True)
    await context.close()


async def test_officers_close_a_major_report_and_a_complaint_in_the_browser(
        dev: DevInstance, reporter: Reporter, admin: Officer, shots: Path) -> None:
    """Report: disposition proposed by the handler, approved by the supervisor (four eyes),
    feedback, closure. Complaint: resolution, remediation verified by another person,
    response, survey answered by the complainant on the public page, closure."""
    report = await a_case(admin, reporter, "分包商工地使用童工，扣押身份证", "labour_rights")
    assert "major" == report["severity"]
    status, accepted = await reporter.post("/api/v1/complaints", {
        "name": "陈女士", "email": "chen@example.cn", "subject": "账单重复扣费",
        "description": "同一笔服务费扣了两次", "category": "billing", "unit": "GD",
        "locale": "zh-Hans", "pow": await reporter.pow()})
    assert 202 == status
    complaint: dict[str, object] = {}
    for _ in range(100):
        complaint = next((c for c in await admin.all_cases() if c["kind"] == "complaint"), {})
        if complaint:
            break
        await asyncio.sleep(0.1)
    passwords = {}
    for name, role in (("handler", "officer"), ("chief", "supervisor")):
        status, created = await admin.post("/api/v1/accounts", {
            "username": name, "role": role, "unit": "GD"})
        passwords[name] = created["one_time_password"]
    async with chromium() as browser:
        handler = OfficerBrowser(await (await browser.new_context()).new_page(), dev.internal,
                                 shots, "handler")
        chief = OfficerBrowser(await (await browser.new_context()).new_page(), dev.internal,
                               shots, "chief")
        await handler.sign_in("handler", passwords["handler"])
        await chief.sign_in("chief", passwords["chief"])

        await handler.page.goto(f"{dev.internal}/ui/cases/{report['id']}")
        await act(handler, "send_acceptance_notice", notice_sent=True)
        assert "accepted" == await act(handler, "accept")
        assert "disposition_proposed" == await act(
            handler, "propose_disposition", disposition="予以了結",
            collective_review="GD discipline committee, meeting 2026-07, minutes 12")
        assert 0 == await handler.page.locator("#action-approve_disposition").count()
        await handler.shot("report-disposition-proposed")
        await chief.page.goto(f"{dev.internal}/ui/cases/{report['id']}")
        await chief.shot("report-approval")
        assert "concluded" == await act(chief, "approve_disposition")
        await handler.page.goto(f"{dev.internal}/ui/cases/{report['id']}")
        assert "feedback_sent" == await act(handler, "send_feedback", feedback_sent=True)
        assert 0 == await handler.page.locator("#action-close").count()  # supervisors close
        await chief.page.goto(f"{dev.internal}/ui/cases/{report['id']}")
        assert "closed" == await act(chief, "close")
        await chief.shot("report-closed")

        await handler.page.goto(f"{dev.internal}/ui/cases/{complaint['id']}")
        await handler.shot("complaint")
        await act(handler, "send_written_notice", notice_sent=True)
        assert "investigating" == await act(handler, "accept_complaint")
        assert "resolved" == await act(
            handler, "record_resolution", root_cause="billing batch ran twice",
            root_cause_category="billing_error",
            **{"corrective_action.owner": "billing team", "corrective_action.due": "2026-12-31"})
        assert 0 == await handler.page.locator("#action-verify_remediation").count()
        await chief.page.goto(f"{dev.internal}/ui/cases/{complaint['id']}")
        await act(chief, "verify_remediation", verified=True)
        await handler.page.goto(f"{dev.internal}/ui/cases/{complaint['id']}")
        assert "response_sent" == await act(handler, "send_response", response_sent=True)
        assert "survey_sent" == await act(handler, "send_survey", survey_sent=True)
        # The complainant answers through the public survey page, on a phone, no JavaScript.
        await answer_survey(browser, dev, reporter, str(accepted["receipt"]))
        for _ in range(100):
            _, trail = await admin.get(f"/api/v1/cases/{complaint['id']}/audit")
            if any(e["type"] == "survey.answered" for e in trail["events"]):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the survey answer was not recorded")
        await handler.page.goto(f"{dev.internal}/ui/cases/{complaint['id']}")
        assert "closed" == await act(handler, "close")
        await handler.shot("complaint-closed")
        await chief.page.goto(f"{dev.internal}/ui/dashboard")
        assert "1.0" == (await chief.page.text_content("#satisfied-rate") or "").strip()
        assert "5.0" == (await chief.page.text_content("#rating-mean") or "").strip()
        await chief.shot("dashboard-after-closure")
    status, trail = await admin.get(f"/api/v1/cases/{report['id']}/audit")
    actors = {e["type"]: e["actor"] for e in trail["events"]}
    assert ("handler", "chief") == (actors["workflow.propose_disposition"],
                                    actors["workflow.approve_disposition"])
