"""A reporter's and an officer's client for tests, independent of the product's code.

Sealing uses :mod:`tests.support.hpke_ref` (RFC 9180 written from the primitives), and
the proof of work is solved here, so a test proves the wire contract, not that the
product agrees with itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support import hpke_ref
from tests.support.officer_login import Authenticator


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def solve(challenge: str, difficulty: int) -> str:
    nonce = 0
    while True:
        digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
        if int.from_bytes(digest, "big") >> (256 - difficulty) == 0 if difficulty else True:
            return str(nonce)
        nonce += 1


@dataclass
class Reporter:
    session: aiohttp.ClientSession
    base: str

    async def key(self) -> dict[str, Any]:
        async with self.session.get(f"{self.base}/api/v1/intake/key") as resp:
            assert 200 == resp.status
            doc: dict[str, Any] = await resp.json()
            return doc

    async def pow(self) -> dict[str, str]:
        async with self.session.get(f"{self.base}/api/v1/intake/pow") as resp:
            assert 200 == resp.status
            problem = await resp.json()
        return {"challenge": problem["challenge"],
                "nonce": solve(problem["challenge"], problem["difficulty"])}

    async def sealed_report(self, payload: dict[str, Any], *, category: str = "corruption",
                            unit: str | None = None) -> dict[str, Any]:
        key = await self.key()
        enc, ct = hpke_ref.seal_single(b64d(key["public_key"]), b"hotline/1 report",
                                       json.dumps(payload, ensure_ascii=False).encode())
        envelope: dict[str, Any] = {"kid": key["kid"], "enc": b64e(enc), "ciphertext": b64e(ct),
                                    "category": category, "pow": await self.pow()}
        if unit is not None:
            envelope["unit"] = unit
        return envelope

    async def post(self, path: str, doc: Any, *, token: str | None = None
                   ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.post(f"{self.base}{path}", json=doc, headers=headers) as resp:
            return resp.status, await resp.json()

    async def report(self, payload: dict[str, Any], **kwargs: Any) -> tuple[int, dict[str, Any]]:
        return await self.post("/api/v1/reports", await self.sealed_report(payload, **kwargs))

    async def followup(self, receipt: str) -> tuple[int, dict[str, Any]]:
        status, doc = await self.post("/api/v1/followup/login", {"receipt": receipt})
        if status != 200:
            return status, doc
        async with self.session.get(f"{self.base}/api/v1/followup", headers={
                "Authorization": f"Bearer {doc['token']}"}) as resp:
            return resp.status, await resp.json()


@dataclass
class Officer:
    session: aiohttp.ClientSession
    base: str
    token: str = ""

    authenticator: Authenticator = field(default_factory=Authenticator)

    async def login(self, username: str, password: str) -> None:
        """Sign in; supervisors, admins and auditors enrol TOTP on first use (issue 5)."""
        async def post(path: str, body: dict[str, Any], headers: dict[str, str]
                       ) -> tuple[int, Any]:
            async with self.session.post(f"{self.base}{path}", json=body,
                                         headers=headers) as resp:
                return resp.status, await resp.json()

        status, doc = await self.authenticator.login(post, username, password)
        assert 200 == status, doc
        self.token = doc["token"]

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(f"{self.base}{path}", headers={
                "Authorization": f"Bearer {self.token}"}) as resp:
            return resp.status, await resp.json()

    async def post(self, path: str, doc: Any) -> tuple[int, Any]:
        async with self.session.post(f"{self.base}{path}", json=doc, headers={
                "Authorization": f"Bearer {self.token}"}) as resp:
            return resp.status, await resp.json()

    async def all_cases(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            path = "/api/v1/cases?limit=200" + (f"&cursor={cursor}" if cursor else "")
            status, page = await self.get(path)
            assert 200 == status, page
            items += page["items"]
            cursor = page["next"]
            if not cursor:
                return items
