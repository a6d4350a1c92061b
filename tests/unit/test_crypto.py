"""Receipts, proof of work, tokens and key custody (hotline.crypto)."""

# House style (STYLE.md) is `assert expected == actual`, which SIM300 calls a Yoda
# condition when the expected value is a literal or constant.

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import stat
import string
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from hotline.crypto import (
    KeyRing,
    MasterKey,
    PowIssuer,
    ReceiptKeys,
    Sealed,
    TokenSigner,
    b64d,
    b64e,
    generate_receipt,
    new_key_record,
    new_receipt,
    normalise_receipt,
    open_sealed,
    receipt_reply_private_key,
    receipt_reply_public_key,
    seal,
    solve_pow,
)
from hotline.errors import ContractError, SealError, SettingsError, UnknownKey

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
POW_KEY = b"p" * 32
POW_TTL = 300
DIFFICULTY = 8
RECEIPT = "7KQ2M-10ABC-DEFGH-JKMNP"
CANONICAL = "7KQ2M10ABCDEFGHJKMNP"
RECEIPT_FORMAT = re.compile(r"[0-9A-HJKMNP-TV-Z]{5}(?:-[0-9A-HJKMNP-TV-Z]{5}){3}")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _public_bytes_of_receipt(canonical: str) -> bytes:
    return receipt_reply_private_key(canonical).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _zero_bits(challenge: str, nonce: str) -> int:
    """Leading zero bits of SHA-256(challenge ":" nonce), computed here, not by the product."""
    value = int.from_bytes(hashlib.sha256(f"{challenge}:{nonce}".encode()).digest(), "big")
    return 256 - value.bit_length()


def _failing_nonce(challenge: str, difficulty: int) -> str:
    """The smallest decimal nonce that does NOT reach ``difficulty`` zero bits."""
    nonce = 0
    while _zero_bits(challenge, str(nonce)) >= difficulty:
        nonce += 1
    return str(nonce)


@pytest.fixture
def issuer() -> PowIssuer:
    """A proof-of-work issuer with a small difficulty."""
    return PowIssuer(POW_KEY, DIFFICULTY, POW_TTL)


@pytest.fixture
def solved(issuer: PowIssuer) -> dict[str, str]:
    """A freshly issued and solved challenge, as a client would send it."""
    problem = issuer.issue(NOW)
    return {"challenge": problem.challenge, "nonce": solve_pow(problem.challenge, DIFFICULTY)}


@pytest.fixture
def master(tmp_path: Path) -> MasterKey:
    """A master key created on disk as 'hotline keys rotate' would."""
    return MasterKey.load(tmp_path / "master.key", create=True)


# --- receipts ------------------------------------------------------------------------------


def test_generated_receipt_has_four_groups_of_five_crockford_symbols() -> None:
    """A receipt is 20 Crockford base32 symbols in four hyphenated groups."""
    receipt = generate_receipt()

    assert RECEIPT_FORMAT.fullmatch(receipt) is not None, receipt


def test_thousand_receipts_are_distinct_and_canonical() -> None:
    """1,000 receipts are distinct, well formed, and normalise to their own symbols."""
    receipts = [generate_receipt() for _ in range(1000)]

    assert 1000 == len(set(receipts))
    assert [] == [r for r in receipts if RECEIPT_FORMAT.fullmatch(r) is None]
    assert [r.replace("-", "") for r in receipts] == [normalise_receipt(r) for r in receipts]


def test_new_receipt_comes_with_its_canonical_form() -> None:
    """new_receipt gives the receipt as shown and what normalise_receipt makes of it."""
    pairs = [new_receipt() for _ in range(200)]

    assert [] == [shown for shown, _ in pairs if RECEIPT_FORMAT.fullmatch(shown) is None]
    assert [normalise_receipt(shown) for shown, _ in pairs] == [c for _, c in pairs]


def test_canonical_receipt_normalises_to_itself() -> None:
    """Normalising is idempotent: the canonical form maps to itself."""
    assert CANONICAL == normalise_receipt(CANONICAL)


@pytest.mark.parametrize("typed", [
    RECEIPT,
    RECEIPT.lower(),
    "7kQ2m-10aBc-DeFgH-jKmNp",
    "7KQ2M 10ABC DEFGH JKMNP",
    "  7KQ2M10ABC  DEFGH-JKMNP ",
    "7KQ2M10ABCDEFGHJKMNP",
    "7KQ2M10ABC-DEFGHJKMNP",
    "-7KQ2M--10ABC---DEFGH-JKMNP-",
    "7KQ2M-IOABC-DEFGH-JKMNP",
    "7KQ2M-LOABC-DEFGH-JKMNP",
    "7kq2m-ioabc-defgh-jkmnp",
    "7kq2m-loabc-defgh-jkmnp",
])
def test_normalise_accepts_what_a_person_might_type(typed: str) -> None:
    """Case, spaces, missing or extra hyphens and I/L→1, O→0 are forgiven."""
    assert CANONICAL == normalise_receipt(typed)


@pytest.mark.parametrize("typed", [
    "7KQ2M-10ABC-DEFGH-JKMNU",  # U is not a Crockford symbol
    "7KQ2M-10ABC-DEFGH-JKMN",  # 19 symbols
    "7KQ2M-10ABC-DEFGH-JKMNPQ",  # 21 symbols
    "",
    "-----",
    "7KQ2M-10ABC-DEFGH-JKMN*",
    "7KQ2M_10ABC_DEFGH_JKMNP",
    "７KQ2M-10ABC-DEFGH-JKMNP",  # full-width digit seven
    "A" * 1_000_000,
    "-" * 1_000_000 + RECEIPT,
])
def test_normalise_rejects_what_cannot_be_a_receipt(typed: str) -> None:
    """Foreign symbols, wrong lengths and huge inputs normalise to None."""
    assert normalise_receipt(typed) is None


@pytest.mark.parametrize("value", [None, 12345, b"7KQ2M10ABCDEFGHJKMNP", ["7KQ2M"], {"$gt": ""}])
def test_normalise_rejects_non_strings(value: Any) -> None:
    """Anything that is not a str (JSON numbers, objects, bytes) normalises to None."""
    assert normalise_receipt(value) is None


def test_receipt_hash_is_stable_per_key_and_differs_across_keys() -> None:
    """The keyed hash depends on the receipt and the key, nothing else."""
    first = ReceiptKeys(b"a" * 32)
    same_key = ReceiptKeys(b"a" * 32)
    other_key = ReceiptKeys(b"b" * 32)

    assert first.receipt_hash(CANONICAL) == same_key.receipt_hash(CANONICAL)
    assert first.receipt_hash(CANONICAL) == first.receipt_hash(CANONICAL)
    assert first.receipt_hash(CANONICAL) != other_key.receipt_hash(CANONICAL)
    assert first.receipt_hash(CANONICAL) != first.receipt_hash("7KQ2M10ABCDEFGHJKMNQ")
    assert CANONICAL not in first.receipt_hash(CANONICAL)


def test_receipt_key_file_is_created_private_and_reloads(tmp_path: Path) -> None:
    """The receipt key file is created with mode 0600 and 32 bytes, and reloads the same."""
    path = tmp_path / "keys" / "receipt.key"

    created = ReceiptKeys.load(path, create=True)
    reloaded = ReceiptKeys.load(path)

    assert 0o600 == _mode(path)
    assert 32 == len(path.read_bytes())
    assert created.receipt_hash(CANONICAL) == reloaded.receipt_hash(CANONICAL)


def test_missing_receipt_key_file_names_the_setting(tmp_path: Path) -> None:
    """Without create, a missing receipt key file is a SettingsError naming the variable."""
    with pytest.raises(SettingsError, match="HOTLINE_RECEIPT_KEY_FILE"):
        ReceiptKeys.load(tmp_path / "absent.key")


def test_reply_key_is_deterministic_per_receipt() -> None:
    """The same receipt always derives the same reply key; another receipt another key."""
    assert _public_bytes_of_receipt(CANONICAL) == _public_bytes_of_receipt(CANONICAL)
    assert _public_bytes_of_receipt(CANONICAL) != _public_bytes_of_receipt(
        "7KQ2M10ABCDEFGHJKMNQ")


def test_reply_key_derivation_is_pinned() -> None:
    """The reply key of a receipt never changes (replies to old receipts must still open)."""
    expected = "e7964c6113d025f8e39aaef9188524d5d0d18fa4fa479bc99eddb3a0d8836000"

    assert expected == _public_bytes_of_receipt(CANONICAL).hex()


def test_reply_key_seed_is_hkdf_sha256_of_the_receipt() -> None:
    """The reply key's private half is HKDF-SHA256 of the canonical receipt."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    for receipt in (CANONICAL, normalise_receipt(generate_receipt())):
        assert receipt is not None
        seed = HKDF(SHA256(), 32, salt=b"hotline/1 receipt", info=b"reply key").derive(
            receipt.encode("ascii"))
        expected = X25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert expected == _public_bytes_of_receipt(receipt)


def test_reply_public_key_is_the_public_half_of_the_reply_key() -> None:
    """libsodium's reply public key equals OpenSSL's public half of the derived private key."""
    receipts = [CANONICAL, *(normalise_receipt(generate_receipt()) for _ in range(200))]

    expected = [_public_bytes_of_receipt(r) for r in receipts if r is not None]

    assert expected == [receipt_reply_public_key(r) for r in receipts if r is not None]
    assert "e7964c6113d025f8e39aaef9188524d5d0d18fa4fa479bc99eddb3a0d8836000" == (
        receipt_reply_public_key(CANONICAL).hex())


def test_receipt_hash_is_hmac_sha256_hex() -> None:
    """The keyed receipt hash is HMAC-SHA256 in hex (stored hashes must keep matching)."""
    import hmac

    expected = hmac.new(b"a" * 32, CANONICAL.encode(), hashlib.sha256).hexdigest()

    assert expected == ReceiptKeys(b"a" * 32).receipt_hash(CANONICAL)


def test_reply_key_opens_what_was_sealed_to_its_public_half() -> None:
    """A message sealed to the receipt's reply key opens with the key re-derived later."""
    public = receipt_reply_private_key(CANONICAL).public_key()
    sealed = seal(b"we are looking into it", public, kid="reply", purpose="message")

    assert b"we are looking into it" == open_sealed(
        sealed, receipt_reply_private_key(CANONICAL), purpose="message")


# --- proof of work -------------------------------------------------------------------------


def test_solved_challenge_verifies(issuer: PowIssuer, solved: dict[str, str]) -> None:
    """A challenge solved with solve_pow verifies and reports its difficulty and id."""
    problem = issuer.verify(solved, NOW)

    assert (solved["challenge"], DIFFICULTY) == (problem.challenge, problem.difficulty)
    assert solved["challenge"].startswith(problem.challenge_id + ".")
    assert NOW + timedelta(seconds=POW_TTL) == problem.expires_at


def test_issued_problem_describes_itself(issuer: PowIssuer) -> None:
    """issue() states the difficulty and an expiry ttl seconds ahead."""
    problem = issuer.issue(NOW)

    assert (DIFFICULTY, NOW + timedelta(seconds=POW_TTL)) == (problem.difficulty,
                                                              problem.expires_at)
    assert problem.challenge != issuer.issue(NOW).challenge


def test_solve_pow_meets_the_difficulty(issuer: PowIssuer) -> None:
    """solve_pow's nonce gives at least the asked leading zero bits (checked here)."""
    challenge = issuer.issue(NOW).challenge

    nonce = solve_pow(challenge, DIFFICULTY)

    assert nonce.isdecimal()
    assert _zero_bits(challenge, nonce) >= DIFFICULTY


def test_wrong_nonce_is_refused(issuer: PowIssuer) -> None:
    """A nonce that does not reach the difficulty is a ContractError on pow.nonce."""
    challenge = issuer.issue(NOW).challenge
    solution = {"challenge": challenge, "nonce": _failing_nonce(challenge, DIFFICULTY)}

    with pytest.raises(ContractError) as excinfo:
        issuer.verify(solution, NOW)

    assert "pow.nonce" == excinfo.value.field


def test_challenge_with_lowered_difficulty_is_refused(issuer: PowIssuer) -> None:
    """Rewriting the challenge body to difficulty 0 breaks its MAC."""
    _, body, mac = issuer.issue(NOW).challenge.split(".")
    raw = b64d(body)
    expires, _ = struct.unpack(">QB", raw[:9])
    forged = f"v1.{b64e(struct.pack('>QB', expires, 0) + raw[9:])}.{mac}"

    with pytest.raises(ContractError) as excinfo:
        issuer.verify({"challenge": forged, "nonce": "0"}, NOW)

    assert "pow.challenge" == excinfo.value.field


@pytest.mark.parametrize("part", [1, 2])
def test_tampered_challenge_is_refused(issuer: PowIssuer, part: int) -> None:
    """Changing one symbol of the body or the MAC is refused even with a valid solution."""
    parts = issuer.issue(NOW).challenge.split(".")
    symbol = parts[part][3]
    parts[part] = parts[part][:3] + ("B" if symbol == "A" else "A") + parts[part][4:]
    tampered = ".".join(parts)

    with pytest.raises(ContractError):
        issuer.verify({"challenge": tampered, "nonce": solve_pow(tampered, DIFFICULTY)}, NOW)


@pytest.mark.parametrize("challenge", [
    "",
    "v1",
    "v1..",
    "v2.AAAA.AAAA",
    "v1.AAAA.AAAA.AAAA",
    "x" * 201,
])
def test_malformed_challenge_is_refused(issuer: PowIssuer, challenge: str) -> None:
    """Challenges not of the issued shape are refused."""
    with pytest.raises(ContractError):
        issuer.verify({"challenge": challenge, "nonce": "1"}, NOW)


def test_challenge_from_another_key_is_refused(issuer: PowIssuer) -> None:
    """A challenge issued under another key does not verify here."""
    stranger = PowIssuer(b"q" * 32, DIFFICULTY, POW_TTL)
    challenge = stranger.issue(NOW).challenge
    solution = {"challenge": challenge, "nonce": solve_pow(challenge, DIFFICULTY)}

    with pytest.raises(ContractError) as excinfo:
        issuer.verify(solution, NOW)

    assert "pow.challenge" == excinfo.value.field


@pytest.mark.parametrize("later", [POW_TTL, POW_TTL + 1, 10 * POW_TTL])
def test_expired_challenge_is_refused(issuer: PowIssuer, solved: dict[str, str],
                                      later: int) -> None:
    """From its expiry on, a solved challenge is refused."""
    with pytest.raises(ContractError, match="expired"):
        issuer.verify(solved, NOW + timedelta(seconds=later))


def test_challenge_verifies_until_just_before_expiry(issuer: PowIssuer,
                                                     solved: dict[str, str]) -> None:
    """One second before expiry a solved challenge still verifies."""
    problem = issuer.verify(solved, NOW + timedelta(seconds=POW_TTL - 1))

    assert solved["challenge"] == problem.challenge


@pytest.mark.parametrize("shape", [
    "no challenge", "no nonce", "empty", "extra field", "not an object", "list", "null",
])
def test_solution_of_wrong_shape_is_refused(issuer: PowIssuer, solved: dict[str, str],
                                            shape: str) -> None:
    """Missing or extra fields, or a non-object, are a ContractError on pow."""
    candidates: dict[str, object] = {
        "no challenge": {"nonce": solved["nonce"]},
        "no nonce": {"challenge": solved["challenge"]},
        "empty": {},
        "extra field": {**solved, "difficulty": 0},
        "not an object": f"{solved['challenge']}:{solved['nonce']}",
        "list": [solved["challenge"], solved["nonce"]],
        "null": None,
    }

    with pytest.raises(ContractError) as excinfo:
        issuer.verify(candidates[shape], NOW)

    assert "pow" == excinfo.value.field


@pytest.mark.parametrize("nonce", [
    "", "abc", "-1", "+1", "1.0", "1e3", " 1", "1 ", "0x10", "²", "١٢٣", "１２", "1" * 21,
])
def test_non_decimal_nonce_is_refused(issuer: PowIssuer, nonce: str) -> None:
    """Only short ASCII decimal strings are nonces."""
    challenge = issuer.issue(NOW).challenge

    with pytest.raises(ContractError):
        issuer.verify({"challenge": challenge, "nonce": nonce}, NOW)


@pytest.mark.parametrize("field", ["challenge", "nonce"])
@pytest.mark.parametrize("value", [{"$gt": ""}, {"$ne": None}, ["1"], 7, None, True])
def test_non_string_fields_are_refused(issuer: PowIssuer, solved: dict[str, str], field: str,
                                       value: object) -> None:
    """Query-operator objects, lists, numbers and null in either field are refused."""
    solution: dict[str, object] = {**solved, field: value}

    with pytest.raises(ContractError):
        issuer.verify(solution, NOW)


@pytest.mark.parametrize("nonce", ["0", "1", "42", "00000", "9" * 20])
def test_difficulty_zero_accepts_any_decimal_nonce(nonce: str) -> None:
    """With difficulty 0 every decimal nonce solves the challenge."""
    free = PowIssuer(POW_KEY, 0, POW_TTL)
    problem = free.issue(NOW)

    verified = free.verify({"challenge": problem.challenge, "nonce": nonce}, NOW)

    assert 0 == verified.difficulty


def test_difficulty_zero_still_needs_a_decimal_nonce() -> None:
    """Difficulty 0 waives the work, not the shape of the answer."""
    free = PowIssuer(POW_KEY, 0, POW_TTL)

    with pytest.raises(ContractError):
        free.verify({"challenge": free.issue(NOW).challenge, "nonce": "x"}, NOW)


# --- tokens --------------------------------------------------------------------------------


@pytest.fixture
def signer() -> TokenSigner:
    """A follow-up token signer."""
    return TokenSigner(b"t" * 32, audience="followup")


def test_token_round_trip(signer: TokenSigner) -> None:
    """A token verifies to its claims plus the expiry."""
    token = signer.issue({"case": "c-1", "receipt": CANONICAL}, 600, now=1_000_000.0)

    expected = {"case": "c-1", "receipt": CANONICAL, "exp": 1_000_600}
    assert expected == signer.verify(token, now=1_000_599.0)


def test_token_does_not_reveal_its_claims(signer: TokenSigner) -> None:
    """The receipt inside a token is not readable from the token."""
    token = signer.issue({"receipt": CANONICAL}, 600, now=1_000_000.0)

    assert CANONICAL.encode() not in b64d(token)
    assert CANONICAL not in token


@pytest.mark.parametrize("later", [601.0, 3600.0])
def test_expired_token_is_refused(signer: TokenSigner, later: float) -> None:
    """After its ttl a token is a ContractError."""
    token = signer.issue({"case": "c-1"}, 600, now=1_000_000.0)

    with pytest.raises(ContractError, match="expired"):
        signer.verify(token, now=1_000_000.0 + later)


@pytest.mark.parametrize("position", [0, 10, 20, -10])
def test_tampered_token_is_refused(signer: TokenSigner, position: int) -> None:
    """Changing one base64url symbol (nonce, body or tag) makes the token invalid."""
    token = signer.issue({"case": "c-1"}, 600, now=1_000_000.0)
    index = position % len(token)
    replacement = "B" if token[index] == "A" else "A"
    tampered = token[:index] + replacement + token[index + 1:]

    with pytest.raises(ContractError):
        signer.verify(tampered, now=1_000_000.0)


def test_token_for_another_audience_is_refused(signer: TokenSigner) -> None:
    """A token issued for another audience under the same key is refused."""
    other = TokenSigner(b"t" * 32, audience="casework")
    token = other.issue({"case": "c-1"}, 600, now=1_000_000.0)

    with pytest.raises(ContractError):
        signer.verify(token, now=1_000_000.0)


def test_token_under_another_key_is_refused(signer: TokenSigner) -> None:
    """A token issued under another key is refused."""
    token = TokenSigner(b"u" * 32, audience="followup").issue({"case": "c-1"}, 600,
                                                               now=1_000_000.0)

    with pytest.raises(ContractError):
        signer.verify(token, now=1_000_000.0)


@pytest.mark.parametrize("token", ["", "AAAA", "not a token", "A" * 5000, "=", "a/b+c"])
def test_garbage_token_is_refused(signer: TokenSigner, token: str) -> None:
    """Short, oversized or non-base64url tokens are a ContractError, not a crash."""
    with pytest.raises(ContractError):
        signer.verify(token, now=1_000_000.0)


@pytest.mark.parametrize("token", [None, 42, b"AAAA", {"$gt": ""}])
def test_non_string_token_is_refused(signer: TokenSigner, token: Any) -> None:
    """A token that is not a str is a ContractError."""
    with pytest.raises(ContractError):
        signer.verify(token, now=1_000_000.0)


# --- master key and key ring ---------------------------------------------------------------


def test_master_key_file_is_created_private_with_32_bytes(tmp_path: Path) -> None:
    """A created master key file has mode 0600 and 32 random bytes, and reloads the same."""
    path = tmp_path / "secrets" / "master.key"

    created = MasterKey.load(path, create=True)
    reloaded = MasterKey.load(path)

    assert 0o600 == _mode(path)
    assert 32 == len(path.read_bytes())
    assert bytes(32) != path.read_bytes()
    assert created.derive("tokens") == reloaded.derive("tokens")


def test_master_key_is_not_recreated_over_an_existing_file(tmp_path: Path) -> None:
    """create=True keeps an existing master key file."""
    path = tmp_path / "master.key"
    path.write_bytes(b"m" * 32)

    MasterKey.load(path, create=True)

    assert b"m" * 32 == path.read_bytes()


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_master_key_file_of_wrong_length_names_the_setting(tmp_path: Path, length: int) -> None:
    """A master key file that is not 32 bytes is a SettingsError naming the variable."""
    path = tmp_path / "master.key"
    path.write_bytes(b"m" * length)

    with pytest.raises(SettingsError, match="HOTLINE_MASTER_KEY_FILE"):
        MasterKey.load(path)


def test_missing_master_key_file_names_the_setting(tmp_path: Path) -> None:
    """Without create, a missing master key file is a SettingsError naming the variable."""
    with pytest.raises(SettingsError, match="HOTLINE_MASTER_KEY_FILE"):
        MasterKey.load(tmp_path / "absent.key")


def test_master_key_derives_distinct_subkeys(master: MasterKey) -> None:
    """Subkeys for different purposes differ and are stable."""
    assert master.derive("tokens") == master.derive("tokens")
    assert master.derive("tokens") != master.derive("pow")


def test_wrap_unwrap_round_trip(master: MasterKey) -> None:
    """unwrap returns what wrap was given, under the same label."""
    secret = b"\x01" * 32

    wrapped = master.wrap(secret, label="kid-1")

    assert secret == master.unwrap(wrapped, label="kid-1")
    assert secret not in wrapped


def test_unwrap_with_another_master_key_is_refused(master: MasterKey) -> None:
    """A blob wrapped under one master key does not unwrap under another."""
    wrapped = master.wrap(b"\x01" * 32, label="kid-1")

    with pytest.raises(SealError):
        MasterKey(b"o" * 32).unwrap(wrapped, label="kid-1")


def test_unwrap_under_another_label_is_refused(master: MasterKey) -> None:
    """The label binds the blob to its key id."""
    wrapped = master.wrap(b"\x01" * 32, label="kid-1")

    with pytest.raises(SealError):
        master.unwrap(wrapped, label="kid-2")


def test_key_ring_opens_every_record(master: MasterKey) -> None:
    """Each record's private key is unwrapped and matches its public half."""
    records = [new_key_record(master, NOW), new_key_record(master, NOW + timedelta(days=1))]

    ring = KeyRing(records, master)

    expected = [r.public_key for r in records]
    assert expected == [
        ring.private_key(r.kid).public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw)
        for r in records]
    assert all(r.kid in ring for r in records)


def test_key_ring_active_is_the_newest_active(master: MasterKey) -> None:
    """The active key is the newest record still marked active."""
    oldest = new_key_record(master, NOW)
    newest_active = new_key_record(master, NOW + timedelta(days=30))
    newer_retired = dataclasses.replace(new_key_record(master, NOW + timedelta(days=60)),
                                        active=False)

    ring = KeyRing([newest_active, newer_retired, oldest], master)
    kid, public = ring.active_public_key()

    assert newest_active.kid == ring.active.kid
    assert newest_active.kid == kid
    assert newest_active.public_key == public.public_bytes(serialization.Encoding.Raw,
                                                           serialization.PublicFormat.Raw)


def test_key_ring_opens_what_was_sealed_to_its_active_key(master: MasterKey) -> None:
    """A report sealed to the active public key opens with the ring's private key."""
    ring = KeyRing([new_key_record(master, NOW)], master)
    kid, public = ring.active_public_key()
    sealed = seal(b"report body", public, kid=kid, purpose="report")

    assert b"report body" == open_sealed(sealed, ring.private_key(sealed.kid), purpose="report")


def test_key_ring_unknown_kid_is_unknown_key(master: MasterKey) -> None:
    """Asking for a kid the ring does not hold raises UnknownKey."""
    ring = KeyRing([new_key_record(master, NOW)], master)

    assert "0123456789abcdef" not in ring
    with pytest.raises(UnknownKey):
        ring.private_key("0123456789abcdef")


def test_key_ring_without_active_key_is_unknown_key(master: MasterKey) -> None:
    """A ring of only retired keys has no active key."""
    retired = dataclasses.replace(new_key_record(master, NOW), active=False)
    ring = KeyRing([retired], master)

    with pytest.raises(UnknownKey):
        _ = ring.active


def test_key_ring_refuses_records_of_another_master_key(master: MasterKey) -> None:
    """Records wrapped under another master key do not load."""
    foreign = new_key_record(MasterKey(b"o" * 32), NOW)

    with pytest.raises(SealError):
        KeyRing([foreign], master)


def test_sealed_from_wire_passes_the_text_on_and_decodes_the_same_bytes() -> None:
    """A parsed envelope goes back on the wire as received and decodes to its bytes."""
    original = Sealed("k1", bytes(range(32)), bytes(range(50)))
    wire = original.to_wire()

    parsed = Sealed.from_wire(dict(wire))

    assert wire == parsed.to_wire()
    assert 50 == parsed.ciphertext_size
    assert original == parsed
    assert hash(original) == hash(parsed)
    assert (original.enc, original.ciphertext) == (parsed.enc, parsed.ciphertext)


@pytest.mark.parametrize("size", [17, 18, 19, 20])
def test_sealed_ciphertext_size_is_known_without_decoding(size: int) -> None:
    """ciphertext_size of a parsed envelope equals the decoded length for every tail."""
    parsed = Sealed.from_wire(Sealed("k1", bytes(32), bytes(size)).to_wire())

    assert size == parsed.ciphertext_size
    assert size == len(parsed.ciphertext)


def _wire_with(field: str, text: str) -> dict[str, str]:
    wire = Sealed("k1", bytes(32), bytes(20)).to_wire()
    wire[field] = text
    return wire


@pytest.mark.parametrize("wire", [
    _wire_with("enc", "A" * 42 + "B"),  # 43 symbols: the last one's two unused bits set
    _wire_with("enc", "A" * 42),  # 31 bytes
    _wire_with("ciphertext", "A" * 26 + "B"),
    _wire_with("ciphertext", "AB"),  # 2 symbols: four unused bits set
    _wire_with("ciphertext", "A"),  # no byte length has 1 symbol
    _wire_with("ciphertext", "AA=="),  # padded
    _wire_with("ciphertext", "AA+A"),  # not the URL-safe alphabet
    _wire_with("ciphertext", "AA A"),
    _wire_with("ciphertext", "AA\u0660A"),  # a digit, but not an ASCII one
    _wire_with("ciphertext", "AA\u00e9A"),
    _wire_with("ciphertext", "A" * 70_000 + "/AAA"),  # a large value is checked apart
], ids=["enc-bits", "enc-short", "ct-bits-27", "ct-bits-2", "ct-len", "ct-padded",
        "ct-alphabet", "ct-space", "ct-arabic-digit", "ct-accent", "ct-large-alphabet"])
def test_sealed_from_wire_refuses_non_canonical_base64(wire: dict[str, str]) -> None:
    """Padding, foreign symbols, impossible lengths and set unused bits are refused."""
    with pytest.raises(ContractError):
        Sealed.from_wire(wire)


def test_sealed_from_wire_takes_exactly_the_base64url_alphabet() -> None:
    """Of every ASCII character (and a few others), only base64url's 64 symbols are taken."""
    taken = set()
    for symbol in [chr(i) for i in range(128)] + ["\u0660", "\u00e9", "\uff21"]:
        with contextlib.suppress(ContractError):
            Sealed.from_wire(_wire_with("ciphertext", f"AA{symbol}A"))
            taken.add(symbol)

    assert set(string.ascii_letters + string.digits + "-_") == taken


def test_sealed_is_immutable() -> None:
    """Like the frozen dataclass it replaced, a Sealed cannot be changed."""
    sealed = Sealed("k1", bytes(32), b"x" * 20)

    with pytest.raises(dataclasses.FrozenInstanceError):
        sealed.kid = "k2"


@pytest.mark.parametrize("size", [49_151, 49_152, 49_153, 200_002])
def test_b64d_round_trips_values_larger_than_one_decoding_slice(size: int) -> None:
    """Large values are decoded slice by slice; the bytes are the same."""
    raw = bytes(range(256)) * (size // 256) + bytes(size % 256)

    assert raw == b64d(b64e(raw))


def test_sealed_survives_copy_deepcopy_and_pickle() -> None:
    """Copies of a Sealed (also one parsed from the wire) are equal to it."""
    import copy
    import pickle

    built = Sealed("k1", bytes(32), b"x" * 20)
    parsed = Sealed.from_wire(built.to_wire())

    for sealed in (built, parsed):
        assert sealed == copy.copy(sealed)
        assert sealed == copy.deepcopy(sealed)
        assert sealed == pickle.loads(pickle.dumps(sealed))
