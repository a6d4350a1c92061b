"""Mailbox configuration: CONTRACT §7 defaults, the TOML file, validation messages."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hotline.errors import SettingsError
from hotline.mail.config import load_mailboxes, validate_mailboxes
from hotline.org import OrgTree, load_org

pytestmark = pytest.mark.integration

DOMAIN = "mail.example.com"


@pytest.fixture(scope="module")
def org() -> OrgTree:
    return load_org()


def test_defaults_cover_every_province_hk_and_overseas(org: OrgTree) -> None:
    """complaints-<code>@ for each provincial unit (HK included) and overseas@."""
    book = load_mailboxes(org, DOMAIN)
    provinces = {u.code for u in org if u.level == "province"}
    assert provinces | {"OVERSEAS"} == {m.unit for m in book}
    assert len(provinces) + 1 == len(book)
    gd = book.get("Complaints-GD@Mail.Example.com")
    assert gd is not None
    assert ("GD", "zh-Hans") == (gd.unit, gd.language)
    assert "zh-Hant" == book.get(f"complaints-hk@{DOMAIN}").language  # type: ignore[union-attr]
    overseas = book.get(f"overseas@{DOMAIN}")
    assert overseas is not None
    assert ("OVERSEAS", "en") == (overseas.unit, overseas.language)
    assert book.get(f"complaints-hq@{DOMAIN}") is None


def test_file_adds_and_overrides_mailboxes_with_imap(org: OrgTree, tmp_path: Path) -> None:
    """A file entry overrides a default by address and adds new ones with IMAP settings."""
    secret = tmp_path / "imap-gd"
    secret.write_text("s3cret\n")
    path = tmp_path / "mailboxes.toml"
    path.write_text(f"""
[[mailbox]]
address = "complaints-gd@{DOMAIN}"
unit = "GD"
language = "en"
[mailbox.imap]
host = "imap.example.com"
user = "complaints-gd"
password_file = "{secret}"
processed_folder = "Done"
idle = false
poll_seconds = 30

[[mailbox]]
address = "kefu@example.cn"
unit = "SH"
""")
    book = load_mailboxes(org, DOMAIN, path)
    gd = book.get(f"complaints-gd@{DOMAIN}")
    assert gd is not None
    assert gd.imap is not None
    assert ("en", "imap.example.com", 993, "tls", "Done", False, 30.0) == (
        gd.language, gd.imap.host, gd.imap.port, gd.imap.tls, gd.imap.processed_folder,
        gd.imap.idle, gd.imap.poll_seconds)
    assert "s3cret" == gd.imap.password({})
    assert "SH" == book.get("KEFU@example.cn").unit  # type: ignore[union-attr]
    assert [gd] == book.imap_mailboxes()


def test_password_from_a_hotline_variable(org: OrgTree, tmp_path: Path) -> None:
    """password_env names a HOTLINE_ variable from the settings; a missing one is an error."""
    path = tmp_path / "mailboxes.toml"
    path.write_text('[[mailbox]]\naddress = "a@b.example"\nunit = "GD"\n[mailbox.imap]\n'
                    'host = "h"\nuser = "u"\npassword_env = "HOTLINE_IMAP_A"\n')
    [mailbox] = load_mailboxes(org, DOMAIN, path).imap_mailboxes()
    assert mailbox.imap is not None
    assert "pw" == mailbox.imap.password({"HOTLINE_IMAP_A": "pw"})
    with pytest.raises(SettingsError, match="HOTLINE_IMAP_A"):
        mailbox.imap.password({})


def test_every_problem_is_reported_with_its_location(org: OrgTree) -> None:
    """Validation names each bad entry and field, and the loader refuses the file."""
    doc = tomllib.loads("""
[[mailbox]]
address = "not-an-address"
unit = "NOWHERE"
language = "fr"
colour = "red"

[[mailbox]]
address = "x@example.com"
unit = "GD"
[mailbox.imap]
host = "imap.example.com"
port = 70000
tls = "starttls"
password_env = "IMAP_PASSWORD"
""")
    errors = validate_mailboxes(doc, "m.toml", org)
    assert [
        "m.toml: mailbox[0]: unknown key 'colour'",
        "m.toml: mailbox[0].address: expected an e-mail address like complaints-gd@example.com",
        "m.toml: mailbox[0].unit: 'NOWHERE' is not an organisation unit",
        "m.toml: mailbox[0].language: expected one of zh-Hant, zh-Hans, en",
        "m.toml: mailbox[1].imap.user: required, a non-empty string",
        "m.toml: mailbox[1].imap.port: expected an integer 1..65535",
        "m.toml: mailbox[1].imap.tls: expected one of tls, none",
        "m.toml: mailbox[1].imap.password_env: must name a HOTLINE_… environment variable",
    ] == errors


def test_loader_refuses_an_invalid_file(org: OrgTree, tmp_path: Path) -> None:
    """A bad mailboxes file stops the start with a message naming the variable."""
    path = tmp_path / "mailboxes.toml"
    path.write_text('[[mailbox]]\naddress = "x@example.com"\n')
    with pytest.raises(SettingsError, match=r"HOTLINE_MAILBOXES_FILE: .*mailbox\[0\]\.unit"):
        load_mailboxes(org, DOMAIN, path)
