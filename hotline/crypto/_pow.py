from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from hotline.crypto._sealing import b64d, b64e
from hotline.errors import ContractError


@dataclass(frozen=True)
class PowProblem:
    challenge: str
    difficulty: int
    expires_at: datetime
    challenge_id: str


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def solve_pow(challenge: str, difficulty: int) -> str:
    """Find a nonce (what a client does); used by tests, benchmarks and the CLI."""
    nonce = 0
    prefix = challenge.encode() + b":"
    while leading_zero_bits(hashlib.sha256(prefix + str(nonce).encode()).digest()) < difficulty:
        nonce += 1
    return str(nonce)


class PowIssuer:
    """Stateless proof-of-work challenges: ``v1.<b64 expiry|difficulty|random>.<mac>``.

    Intake instances share the key, so any of them verifies any challenge; single use is
    enforced by the store (a burnt challenge id is remembered until it expires).
    """

    def __init__(self, key: bytes, difficulty: int, ttl_seconds: int) -> None:
        self._key = key
        self.difficulty = difficulty
        self._ttl = ttl_seconds

    def _mac(self, body: str) -> str:
        return b64e(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:16])

    def issue(self, now: datetime) -> PowProblem:
        expires = int(now.timestamp()) + self._ttl
        body = "v1." + b64e(struct.pack(">QB", expires, self.difficulty) + secrets.token_bytes(16))
        challenge = f"{body}.{self._mac(body)}"
        return PowProblem(challenge, self.difficulty, datetime.fromtimestamp(expires, UTC),
                          body)

    def verify(self, solution: object, now: datetime) -> PowProblem:
        """Check a ``{"challenge", "nonce"}`` object; raise :class:`ContractError` if bad.

        Returns the problem so the caller can burn its ``challenge_id``.
        """
        if not isinstance(solution, dict) or set(solution) != {"challenge", "nonce"}:
            raise ContractError("pow must be an object with challenge and nonce", field="pow")
        challenge, nonce = solution["challenge"], solution["nonce"]
        if not isinstance(challenge, str) or not isinstance(nonce, str) or len(challenge) > 200 \
                or not nonce.isdecimal() or len(nonce) > 20 or not nonce.isascii():
            raise ContractError("pow.challenge and pow.nonce must be strings (nonce decimal)",
                                field="pow")
        parts = challenge.split(".")
        if len(parts) != 3 or parts[0] != "v1":
            raise ContractError("pow.challenge was not issued here", field="pow.challenge")
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(body), parts[2]):
            raise ContractError("pow.challenge was not issued here", field="pow.challenge")
        raw = b64d(parts[1], field="pow.challenge")
        expires, difficulty = struct.unpack(">QB", raw[:9])
        expires_at = datetime.fromtimestamp(expires, UTC)
        if expires_at <= now:
            raise ContractError("pow.challenge has expired", field="pow.challenge")
        digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
        if leading_zero_bits(digest) < difficulty:
            raise ContractError("pow.nonce does not solve the challenge", field="pow.nonce")
        return PowProblem(challenge, difficulty, expires_at, body)
