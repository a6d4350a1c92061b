"""Officers' replies to complainants, sent by e-mail with proper threading headers.

Casework calls :func:`queue_complaint_reply` after storing an officer's message on a
complaint case. The complainant's address and the Message-ID of their mail are read
from the case's sealed content (web complaints carry ``email`` too); the reply goes out
from the mailbox the complaint came to (or the unit's mailbox), with the case tag in
the subject and ``In-Reply-To``/``References`` to their mail. Its own Message-ID is
remembered for the case first, so the complainant's answer to it joins the case.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from hotline.crypto import open_sealed
from hotline.domain.case import Case
from hotline.errors import SealError
from hotline.logging import get_logger
from hotline.mail.config import MailboxBook
from hotline.mail.outbound import OutboundMail, our_message_id, queue_outbound
from hotline.ports import Bus, Store
from hotline.services import append_audit

__all__ = ["queue_complaint_reply"]

_log = get_logger("hotline.mail.replies")
_FAKE_ID_SUFFIX = "@hotline.invalid>"


def _complaint_content(case: Case, private_key: X25519PrivateKey) -> dict[str, Any] | None:
    try:
        content = json.loads(open_sealed(case.content, private_key, purpose="complaint"))
    except (SealError, ValueError):
        return None
    return content if isinstance(content, dict) else None


async def queue_complaint_reply(store: Store, bus: Bus, book: MailboxBook, *, mail_domain: str,
                                case: Case, message_id: str, body: str,
                                private_key: X25519PrivateKey, kid: str,
                                public: X25519PublicKey, actor: str) -> str | None:
    """Queue ``body`` as a mail to the complainant of ``case``; the outbound id, or None
    when the case has no address to write to (then nothing is queued)."""
    if case.kind != "complaint":
        return None
    content = _complaint_content(case, private_key)
    if content is None:
        return None
    reply_to = [a for a in content.get("reply_to") or [] if isinstance(a, str)]
    to_address = reply_to[0] if reply_to else content.get("email")
    if not isinstance(to_address, str) or "@" not in to_address:
        return None
    mailbox = book.get(content.get("mailbox") if isinstance(content.get("mailbox"), str)
                       else None) or book.for_unit(case.unit)
    from_address = mailbox.address if mailbox is not None else f"complaints@{mail_domain}"
    their_id = content.get("message_id")
    threaded = isinstance(their_id, str) and not their_id.endswith(_FAKE_ID_SUFFIX)
    references = [r for r in content.get("references") or [] if isinstance(r, str)]
    if threaded:
        references.append(str(their_id))
    subject = str(content.get("subject") or "").strip()
    outbound_id = f"o_{message_id}"[:64]
    mail = OutboundMail(
        id=outbound_id, case_id=case.id, kind="reply", from_address=from_address,
        to_address=to_address,
        subject=f"[{case.reference}] Re: {subject}"[:300] if subject else f"[{case.reference}]",
        body=body, message_id=our_message_id(outbound_id, mail_domain),
        in_reply_to=str(their_id) if threaded else None,
        references=tuple(dict.fromkeys(references)))
    await store.mail_threads.remember(case.id, [mail.message_id])
    await queue_outbound(bus, mail, kid=kid, public=public, correlation_id=case.submission_id[:64]
                         if len(case.submission_id) >= 8 else outbound_id)
    await append_audit(store, case.id, actor=actor, type_="mail.reply_queued",
                       data={"outbound_id": outbound_id, "message_id": message_id})
    _log.info("mail.reply_queued", case_id=case.id, outbound_id=outbound_id)
    return outbound_id
