"""Every third-party test mail goes through the parser; expectations shipped with them hold."""

from __future__ import annotations

import json
import re
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from hotline.mail import ParsedMail, parse_mail

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"
_LICENCE_FILES = {"COPYING", "LICENSE", "README.txt", "ARTISTIC-LICENSE.txt"}


def _corpus_mails() -> list[Path]:
    mails: list[Path] = []
    for folder in ("stalwart", "spamscope", "php-mime-mail-parser", "mime4j"):
        for path in sorted((DATA / folder).rglob("*")):
            if not path.is_file() or path.name in _LICENCE_FILES:
                continue
            if path.suffix in (".json", ".txt") or path.name.startswith("LICENSE"):
                continue
            mails.append(path)
    return mails


def _cpython_mails() -> list[Any]:
    # Only a full Python install ships the stdlib's own test package and its mails.
    folder = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
    if not folder.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason="no CPython test_email data"))]
    return sorted(folder.glob("msg_*.txt"))


CORPUS = _corpus_mails()
STALWART = sorted((DATA / "stalwart").rglob("*.eml"))


def _stalwart_expectation(mail: Path) -> dict[str, Any]:
    dump = json.loads(mail.with_suffix(".json").read_text(encoding="utf-8"))
    headers: dict[str, Any] = {}
    for field in dump["parts"][0]["headers"]:
        if isinstance(field["name"], str):
            headers.setdefault(field["name"], field["value"])
    subject = headers.get("subject")
    sender = headers.get("from")
    address = None
    if isinstance(sender, dict) and isinstance(sender.get("Address"), dict):
        listed = sender["Address"].get("List") or [{}]
        address = listed[0].get("address")
    bodies = [dump["parts"][i]["body"] for i in dump["text_body"]]
    return {
        "subject": subject.get("Text") if isinstance(subject, dict) else None,
        "from": address if address and "@" in address else None,
        "texts": [body["Text"] for body in bodies if isinstance(body, dict) and "Text" in body],
        "attachments": len(dump["attachments"]),
    }


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _check_basics(parsed: ParsedMail) -> None:
    assert parsed.message_id.startswith("<")
    assert parsed.message_id.endswith(">")
    assert isinstance(parsed.text, str)


def test_corpus_is_present() -> None:
    """The copied corpora hold the 202 mails the tests below claim to parse."""
    assert 202 == len(CORPUS)


@pytest.mark.parametrize("mail", CORPUS, ids=lambda p: str(p.relative_to(DATA)))
def test_corpus_mail_parses(mail: Path) -> None:
    """A real-world mail parses without exception into an id and text."""
    _check_basics(parse_mail(mail.read_bytes()))


@pytest.mark.parametrize("mail", _cpython_mails(), ids=lambda p: p.name if p else "absent")
def test_cpython_mail_parses(mail: Path) -> None:
    """A CPython test_email mail parses without exception into an id and text."""
    _check_basics(parse_mail(mail.read_bytes()))


@pytest.mark.parametrize("mail", STALWART, ids=lambda p: str(p.relative_to(DATA)))
def test_stalwart_subject_and_sender_agree(mail: Path) -> None:
    """Decoded subject and sender address equal Stalwart's dump wherever it has them."""
    expected = _stalwart_expectation(mail)
    parsed = parse_mail(mail.read_bytes())
    if expected["subject"] is not None:
        assert expected["subject"] == parsed.subject
    if expected["from"] is not None:
        assert expected["from"] == parsed.from_address


# Mails where Stalwart's reading differs by design: its JMAP body algorithm lists later
# inline parts as bodies too (rfc/007), it reads a base64 part as text (thirdparty/001),
# keeps text after a multipart closes (malformed/020, 021), opens a boundary that is also
# the close of its parent (malformed/005), and shows undecodable bytes differently (002).
_TEXT_DIFFERS = {
    "malformed/005.eml",
    "malformed/020.eml",
    "malformed/021.eml",
    "rfc/007.eml",
    "thirdparty/001.eml",
    "thirdparty/002.eml",
}


def test_stalwart_body_text_agreement() -> None:
    """Every Stalwart text body is contained in our text, except the documented exceptions."""
    agreeing: list[str] = []
    compared = 0
    for mail in STALWART:
        expected = _stalwart_expectation(mail)
        if not expected["texts"]:
            continue
        compared += 1
        text = _squeezed(parse_mail(mail.read_bytes()).text)
        if all(_squeezed(body) in text for body in expected["texts"]):
            agreeing.append(str(mail.relative_to(DATA / "stalwart")))
    print(f"stalwart body text agreement: {len(agreeing)}/{compared}")
    assert compared - len(_TEXT_DIFFERS) == len(agreeing)
    assert set() == set(agreeing) & _TEXT_DIFFERS


def test_stalwart_attachment_count_agreement() -> None:
    """Attachment counts match Stalwart's for at least 70 % of its mails."""
    agreeing = sum(
        _stalwart_expectation(mail)["attachments"] == len(parse_mail(mail.read_bytes()).attachments)
        for mail in STALWART
    )
    print(f"stalwart attachment count agreement: {agreeing}/{len(STALWART)}")
    assert agreeing >= 0.7 * len(STALWART)


# mime4j reads every line up to the first empty one as header (or the whole of a
# header-less mail as headers); like the stdlib we end the header block at the first line
# that is no header field and keep the rest as body text, so no complaint text is lost.
_MIME4J_HEADERS_DIFFER = {
    "basic-plain-with-bad-header-separator_decoded_1.txt",
    "hdr-fakeout_decoded_1.txt",
    "malformedHeader-nocrlfcrlf_decoded_1.txt",
    "malformedHeader-noheader_decoded_1.txt",
    "malformedHeaderStartsBody-nocrlfcrlf_decoded_1.txt",
    "malformedHeaderStartsBody-noheader_decoded_1.txt",
    "obsolete_decoded_1.txt",
}
MIME4J_SINGLE = [
    path
    for path in sorted((DATA / "mime4j").rglob("*_decoded_1.txt"))
    if path.name not in _MIME4J_HEADERS_DIFFER
]
_DECLARED_CHARSET = re.compile(rb'charset="?([A-Za-z0-9_-]+)', re.IGNORECASE)


@pytest.mark.parametrize("decoded", MIME4J_SINGLE, ids=lambda p: p.name)
def test_mime4j_single_part_body(decoded: Path) -> None:
    """A single-part mime4j mail's text (or sole attachment) equals mime4j's decoded body."""
    mail = decoded.with_name(decoded.name.replace("_decoded_1.txt", ".msg"))
    parsed = parse_mail(mail.read_bytes())
    actual = parsed.text
    if parsed.attachments:  # a part with a file name is an attachment, not the body
        actual = parsed.attachments[0].payload.decode("utf-8", errors="replace")
    declared = _DECLARED_CHARSET.search(mail.read_bytes())
    charset = declared.group(1).decode() if declared else "utf-8"
    expected = decoded.read_bytes().decode(charset, errors="replace")
    assert _squeezed(expected) == _squeezed(actual)
