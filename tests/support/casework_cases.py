"""Cases written straight to the store for casework tests (sealed with the org key)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hotline.clock import utcnow
from hotline.crypto import seal
from hotline.domain.audit import next_event
from hotline.domain.case import Case, case_id_for
from hotline.services import load_keyring
from tests.support.embedded import Embedded


async def sealed_case(env: Embedded, name: str, *, unit: str = "GD",
                      payload: dict[str, Any] | None = None, excluded: tuple[str, ...] = (),
                      kind: str = "report", severity: str = "general", channel: str = "web",
                      category: str = "corruption", opened: datetime | None = None,
                      workflow: dict[str, Any] | None = None) -> Case:
    """A case ``name`` in ``unit`` whose content opens with the organisation key."""
    ring = await load_keyring(env.store, env.master)
    kid, public = ring.active_public_key()
    body = json.dumps(payload or {"description": f"facts of {name}"}).encode()
    opened = opened or utcnow() - timedelta(minutes=1)
    case = Case(id=case_id_for(f"sub-{name}"), submission_id=f"sub-{name}", reference="",
                kind=kind,  # type: ignore[arg-type]
                category=category, severity=severity, status="new", unit=unit,
                channel=channel, opened_at=opened, received_at=opened, workflow=workflow or {},
                content=seal(body, public, kid=kid,
                             purpose="report" if kind == "report" else "complaint"),
                sealed_by="client", excluded=excluded)
    first = next_event(case.id, None, at=opened, actor="router", type_="case.opened")
    stored, _ = await env.store.cases.open(case, [first], None,
                                           reference_prefix="R-2026" if kind == "report"
                                           else "C-2026")
    return stored
