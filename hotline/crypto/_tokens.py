from __future__ import annotations

import json
import secrets
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hotline.crypto._sealing import b64d, b64e
from hotline.errors import ContractError


class TokenSigner:
    """Opaque bearer tokens: AES-GCM over a small JSON claim set with an expiry.

    Encrypted, not only signed, because a follow-up token carries the receipt (the reply
    key derives from it) and must not reveal it to whoever sees the token.
    """

    def __init__(self, key: bytes, *, audience: str) -> None:
        self._aead = AESGCM(key)
        self._aad = audience.encode()

    def issue(self, claims: dict[str, Any], ttl_seconds: int, *, now: float | None = None) -> str:
        issued = time.time() if now is None else now
        body = json.dumps({**claims, "exp": int(issued) + ttl_seconds}).encode()
        nonce = secrets.token_bytes(12)
        return b64e(nonce + self._aead.encrypt(nonce, body, self._aad))

    def verify(self, token: str, *, now: float | None = None) -> dict[str, Any]:
        """The claims of a valid, unexpired token; :class:`ContractError` otherwise."""
        if not isinstance(token, str) or len(token) > 4096:
            raise ContractError("invalid token")
        try:
            raw = b64d(token, field="token")
            body = self._aead.decrypt(raw[:12], raw[12:], self._aad)
        except (ContractError, InvalidTag, ValueError):
            raise ContractError("invalid token") from None
        claims: dict[str, Any] = json.loads(body)
        if claims.get("exp", 0) < (time.time() if now is None else now):
            raise ContractError("token expired")
        return claims
