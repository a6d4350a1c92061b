"""Sending a complainant the satisfaction survey when an officer applies ``send_survey``.

A random token (256 bits) goes into the link ``<HOTLINE_PUBLIC_BASE_URL>/survey/<token>``;
only its SHA-256 is stored (a ``survey`` record, :mod:`hotline.surveys`). The link reaches
the complainant in their language by e-mail (the outbound path of officers' replies) and,
for web complaints, as a message sealed to the key their receipt derives, shown on the
public follow-up page. The copy of that message the organisation keeps does not carry
the link: an officer cannot answer in the complainant's place.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from aiohttp import web

from casework.app import DEPS, _keyring, mail_reply, store_officer_message
from hotline.contract import format_time
from hotline.domain.case import Case, reporter_language
from hotline.logging import get_logger
from hotline.services import append_audit
from hotline.settings import Settings
from hotline.surveys import SURVEY_KIND, new_token, token_hash
from hotline.web import ApiError

__all__ = ["check_configured", "send_invitation"]

_log = get_logger("hotline.casework.survey")

_TEXT = {
    "en": ("Your complaint {reference} has been answered. Please tell us how satisfied you "
           "are with how it was handled (1 to 5, with an optional comment), within {days} "
           "days: {link}"),
    "zh-Hans": ("您的投诉 {reference} 已答复。请在 {days} 天内告诉我们您对处理结果的满意程度"
                "（1 至 5 分，可附意见）：{link}"),
    "zh-Hant": ("您的投訴 {reference} 已答覆。請在 {days} 天內告訴我們您對處理結果的滿意程度"
                "（1 至 5 分，可附意見）：{link}"),
}
_ORG_NOTE = "Satisfaction survey sent to the complainant (the link is not kept here)."


def check_configured(settings: Settings) -> str:
    """The public base URL links point to; 503 when the installation has none."""
    if settings.public_base_url is None:
        raise ApiError(503, "not_configured",
                       "HOTLINE_PUBLIC_BASE_URL is not set: survey links cannot be made")
    return settings.public_base_url


async def send_invitation(app: web.Application, case: Case, *, actor: str,
                          now: datetime) -> str:
    """Create the survey record and send the link; returns the record key (token hash)."""
    settings, store = app[DEPS].settings, app[DEPS].store
    base = check_configured(settings)
    token = new_token()
    key = token_hash(token)
    expires_at = now + timedelta(days=settings.survey_days)
    await store.records.put(SURVEY_KIND, key, {
        "case_id": case.id, "sent_at": format_time(now), "expires_at": format_time(expires_at),
        "answered": False, "outcome": None, "answer_id": None, "done": False},
        expected_version=0)
    language = reporter_language(case)
    text = _TEXT[language].format(reference=case.reference, days=settings.survey_days,
                                  link=f"{base}/survey/{token}?lang={language}")
    del token
    channels = []
    message_id = "survey_" + secrets.token_urlsafe(15)  # the e-mail's, if no message is kept
    if case.reply_key is not None:
        # Shown on the follow-up page; the organisation's copy does not carry the link.
        message_id = (await store_officer_message(app, case, text, actor,
                                                  org_copy=_ORG_NOTE)).id
        channels.append("receipt")
    outbound = await mail_reply(app[DEPS], case, message_id, text,
                                await _keyring(app, case.content.kid), actor)
    del text
    if outbound is not None:
        channels.append("email")
    if not channels:
        # No address and no receipt (a complaint by phone or visit): nothing can be answered
        # online, so no record waits to expire; the officer records the result by hand.
        await store.records.delete(SURVEY_KIND, key)
    await append_audit(store, case.id, actor=actor, type_="survey.sent",
                       data={"expires_at": format_time(expires_at), "channels": channels})
    _log.info("survey.sent", case_id=case.id, channels=channels)
    return key
