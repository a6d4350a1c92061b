"""The mail-thread repository contract, run on every Store adapter (``store`` fixture)."""

from __future__ import annotations

import pytest

from hotline.errors import ContractError
from hotline.ports import Store

pytestmark = pytest.mark.integration


async def test_unknown_message_ids_have_no_case(store: Store) -> None:
    """A lookup of ids never remembered (or of none at all) finds no case."""
    assert await store.mail_threads.case_for(["<a@example.com>"]) is None
    assert await store.mail_threads.case_for([]) is None


async def test_remembered_ids_lead_to_their_case(store: Store) -> None:
    """Every remembered Message-ID maps to the case it was remembered for."""
    await store.mail_threads.remember("c_one", ["<a@x.example>", "<ack-1@hotline.localhost>"])
    await store.mail_threads.remember("c_two", ["<b@y.example>"])
    assert "c_one" == await store.mail_threads.case_for(["<ack-1@hotline.localhost>"])
    assert "c_two" == await store.mail_threads.case_for(["<zzz@nowhere>", "<b@y.example>"])


async def test_first_known_id_in_order_wins(store: Store) -> None:
    """With ids of two cases, the case of the earliest id in the given order is returned."""
    await store.mail_threads.remember("c_one", ["<a@x.example>"])
    await store.mail_threads.remember("c_two", ["<b@y.example>"])
    assert "c_two" == await store.mail_threads.case_for(["<b@y.example>", "<a@x.example>"])
    assert "c_one" == await store.mail_threads.case_for(["<a@x.example>", "<b@y.example>"])


async def test_an_id_keeps_its_first_case(store: Store) -> None:
    """Remembering is idempotent, and an id claimed by one case is not moved to another."""
    await store.mail_threads.remember("c_one", ["<a@x.example>"])
    await store.mail_threads.remember("c_one", ["<a@x.example>"])
    await store.mail_threads.remember("c_two", ["<a@x.example>", "<c@z.example>"])
    assert "c_one" == await store.mail_threads.case_for(["<a@x.example>"])
    assert "c_two" == await store.mail_threads.case_for(["<c@z.example>"])


async def test_operator_objects_are_refused(store: Store) -> None:
    """A filter object smuggled in as a Message-ID is a ContractError, never a query."""
    with pytest.raises(ContractError):
        await store.mail_threads.case_for([{"$gt": ""}])  # type: ignore[list-item]
    with pytest.raises(ContractError):
        await store.mail_threads.remember("c_one", [{"$ne": ""}])  # type: ignore[list-item]
