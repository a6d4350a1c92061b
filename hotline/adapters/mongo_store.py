"""The distributed store: MongoDB through PyMongo's asyncio API (``AsyncMongoClient``).

MongoDB has no multi-document transaction here (a replica set would allow one, but the
hot path does not need it): each write is one atomic document operation and the
unique indexes created by :meth:`MongoStore.open` decide every race. Opening a case is
idempotent on the submission id: the case document carries the events and receipt of
the attempt that created it (``pending``) until they are written, so whichever router
sees the case next completes exactly that attempt, never a mix of two.

Every query value is checked to be a plain string (or int/datetime where the domain
says so) before it reaches a filter, so an operator object such as ``{"$gt": ""}`` can
never be smuggled in.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from hotline.adapters.codec import (
    case_from_doc,
    case_to_doc,
    message_from_doc,
    message_to_doc,
    page_limit,
)
from hotline.crypto import KeyRecord
from hotline.domain.audit import AuditEvent, AuditHead
from hotline.domain.case import (
    MUTABLE_FIELDS,
    Account,
    Case,
    CaseMessage,
    CaseQuery,
    ReceiptRecord,
    is_system_chain,
)
from hotline.errors import ConcurrencyConflict, ContractError, NotFound
from hotline.ports import (
    AccountRepository,
    AuditRepository,
    CaseRepository,
    ChainHeads,
    KeyRepository,
    MailThreadRepository,
    PowRepository,
    ReceiptRepository,
    Record,
    RecordRepository,
    SequenceRepository,
)

__all__ = ["MongoStore"]

Document = dict[str, Any]
Collection = AsyncCollection[Document]

_MAX_PAGE = 500
_CLOSED = ["closed", "archived"]
_QUERY_PATHS = {"assignee": "workflow.assignee"}  # CaseQuery field → document path
_PING_TIMEOUT = 5.0  # seconds
# An audit event's ``appended`` time comes from the writer's clock just before the insert
# becomes visible; heads_since also reads this far back before its mark, to cover clock
# differences between hosts and inserts still in flight when the mark was taken.
_APPEND_MARGIN = timedelta(minutes=2)


def _text(value: object, name: str) -> str:
    """Filter values are plain strings, never objects that could act as operators."""
    if not isinstance(value, str):
        raise ContractError(f"{name} must be a string", field=name)
    return value


def _moment(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ContractError(f"{name} must be a datetime", field=name)
    return value


def _aware(moment: datetime) -> datetime:
    # A client built without tz_aware=True hands back naive datetimes; BSON dates are UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _event_to_doc(event: AuditEvent) -> Document:
    return {"case_id": event.case_id, "seq": event.seq, "at": event.at, "actor": event.actor,
            "type": event.type, "prev_hash": event.prev_hash, "hash": event.hash,
            "data": dict(event.data)}


def _event_from_doc(doc: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(case_id=doc["case_id"], seq=int(doc["seq"]), at=_aware(doc["at"]),
                      actor=doc["actor"], type=doc["type"], prev_hash=doc["prev_hash"],
                      hash=doc["hash"], data=dict(doc.get("data") or {}))


def _case_to_mongo(case: Case) -> Document:
    doc = case_to_doc(case)
    doc["_id"] = doc.pop("id")
    return doc


def _case_from_mongo(doc: Mapping[str, Any], *, with_content: bool = True) -> Case:
    return case_from_doc({**doc, "id": doc["_id"]}, with_content=with_content)


def _receipt_doc(receipt: ReceiptRecord) -> Document:
    return {"_id": receipt.receipt_hash, "case_id": receipt.case_id,
            "submission_id": receipt.submission_id}


class _Cases:
    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def open(self, case: Case, events: Sequence[AuditEvent],
                   receipt: ReceiptRecord | None, *, reference_prefix: str) -> tuple[Case, bool]:
        submission_id = _text(case.submission_id, "submission_id")
        _text(case.id, "id")
        prefix = _text(reference_prefix, "reference_prefix")
        cases = self._store.collection("cases")
        existing = await cases.find_one({"submission_id": submission_id})
        created = False
        if existing is None:
            # A redelivery normally stops above; only a true race between two routers
            # burns a number here, the one gap this store allows.
            number = await self._store.sequences.next(f"reference:{prefix}")
            doc = _case_to_mongo(replace(case, reference=f"{prefix}-{number:06d}",
                                         audit_head=None))
            doc["pending"] = {"events": [_event_to_doc(e) for e in events],
                              "receipt": None if receipt is None else _receipt_doc(receipt)}
            try:
                await cases.insert_one(doc)
                existing, created = doc, True
            except DuplicateKeyError:
                existing = await cases.find_one({"submission_id": submission_id})
                if existing is None:
                    raise ConcurrencyConflict(
                        f"case {case.id} collides with another case") from None
        return await self._complete(existing), created

    async def _complete(self, doc: Mapping[str, Any]) -> Case:
        """Write the events and receipt the case was created with, then its head."""
        pending = doc.get("pending")
        if pending is None:
            return _case_from_mongo(doc)
        audit = self._store.collection("audit")
        for event in pending["events"]:
            # DuplicateKeyError: a concurrent completion wrote the same event first.
            with contextlib.suppress(DuplicateKeyError):
                await audit.update_one({"case_id": event["case_id"], "seq": event["seq"]},
                                       {"$setOnInsert": {**event,
                                                         "appended": datetime.now(UTC)}},
                                       upsert=True)
        receipt = pending["receipt"]
        if receipt is not None:
            with contextlib.suppress(DuplicateKeyError):
                await self._store.collection("receipts").update_one(
                    {"_id": receipt["_id"]},
                    {"$setOnInsert": {k: v for k, v in receipt.items() if k != "_id"}},
                    upsert=True)
        update: Document = {"$unset": {"pending": ""}}
        if pending["events"]:
            last = pending["events"][-1]
            update["$set"] = {"audit_head": {"seq": last["seq"], "hash": last["hash"]}}
        cases = self._store.collection("cases")
        # Filtering on ``pending`` makes a late completer a no-op once another finished.
        await cases.update_one({"_id": doc["_id"], "pending": {"$exists": True}}, update)
        stored = await cases.find_one({"_id": doc["_id"]})
        if stored is None:
            raise NotFound(f"case {doc['_id']} vanished while opening")
        return _case_from_mongo(stored)

    async def _one(self, field: str, value: str) -> Case | None:
        doc = await self._store.collection("cases").find_one({field: _text(value, field)})
        return None if doc is None else _case_from_mongo(doc)

    async def get(self, case_id: str) -> Case | None:
        return await self._one("_id", case_id)

    async def by_submission(self, submission_id: str) -> Case | None:
        return await self._one("submission_id", submission_id)

    async def by_reference(self, reference: str) -> Case | None:
        return await self._one("reference", reference)

    async def query(self, query: CaseQuery) -> builtins.list[Case]:
        clauses: builtins.list[Document] = []
        for field in ("kind", "status", "severity", "unit", "channel", "assignee"):
            value = getattr(query, field)
            if value is not None:
                clauses.append({_QUERY_PATHS.get(field, field): _text(value, field)})
        if query.units is not None:
            if not isinstance(query.units, set | frozenset):
                raise ContractError("units must be a set of strings", field="units")
            clauses.append({"unit": {"$in": sorted(_text(u, "units") for u in query.units)}})
        if query.fingerprint is not None:
            clauses.append({"fingerprint": _text(query.fingerprint, "fingerprint")})
        if query.viewer is not None:
            if not isinstance(query.viewer, tuple):
                raise ContractError("viewer must be a tuple of strings", field="viewer")
            clauses.append({"excluded": {"$nin": [_text(v, "viewer") for v in query.viewer]}})
        if query.stub_units is not None:
            if not isinstance(query.stub_units, set | frozenset):
                raise ContractError("stub_units must be a set of strings", field="stub_units")
            clauses.append({"stub_unit": {"$in": sorted(_text(u, "stub_units")
                                                        for u in query.stub_units)}})
        if query.overdue_at is not None:
            clauses.append({"due_at": {"$lt": _moment(query.overdue_at, "overdue_at")},
                            "status": {"$nin": _CLOSED}})
        # --- retention (issue 5): tombstones only when asked for; cases past retention
        if not query.include_purged and query.status is None:
            clauses.append({"status": {"$ne": "purged"}})
        if query.archived is not None:
            if not isinstance(query.archived, bool):
                raise ContractError("archived must be true or false", field="archived")
            clauses.append({"archived_at": {"$type": "date"} if query.archived else None})
        if query.retention_before is not None:
            # "$type" repeats the partial index's filter, so the planner may use that index.
            clauses.append({"status": {"$ne": "purged"}, "retention_until": {
                "$lt": _moment(query.retention_before, "retention_before"), "$type": "date"}})
        if query.after is not None:
            if not isinstance(query.after, tuple) or len(query.after) != 2:
                raise ContractError("cursor must be (opened_at, id)", field="cursor")
            opened_at = _moment(query.after[0], "cursor")
            case_id = _text(query.after[1], "cursor")
            clauses.append({"$or": [{"opened_at": {"$lt": opened_at}},
                                    {"opened_at": opened_at, "_id": {"$lt": case_id}}]})
        if not isinstance(query.limit, int) or isinstance(query.limit, bool):
            raise ContractError("limit must be an integer", field="limit")
        limit = max(1, min(query.limit, _MAX_PAGE))  # 0 would mean "no limit" to MongoDB
        # A list's cases carry no ciphertext (Sealed.withheld), as on SQLite: read a case by
        # id to open it; a page of large reports is not sent over the network for a list.
        cursor = (self._store.collection("cases")
                  .find({"$and": clauses} if clauses else {}, {"content.ciphertext": 0})
                  .sort([("opened_at", DESCENDING), ("_id", DESCENDING)])
                  .limit(limit))
        return [_case_from_mongo(doc, with_content=False) for doc in await cursor.to_list(None)]

    async def count(self) -> int:
        return await self._store.collection("cases").count_documents({})

    async def add_message(self, message: CaseMessage) -> bool:
        doc = message_to_doc(message)
        doc["_id"] = _text(doc.pop("id"), "id")
        try:
            await self._store.collection("messages").insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def messages(self, case_id: str) -> builtins.list[CaseMessage]:
        cursor = (self._store.collection("messages")
                  .find({"case_id": _text(case_id, "case_id")})
                  .sort([("at", ASCENDING), ("_id", ASCENDING)]))
        return [message_from_doc({**doc, "id": doc["_id"]})
                for doc in await cursor.to_list(None)]

    async def update(self, case: Case, *, expected_version: int) -> Case:
        if not isinstance(expected_version, int) or isinstance(expected_version, bool):
            raise ContractError("expected_version must be an integer", field="version")
        doc = _case_to_mongo(case)
        cases = self._store.collection("cases")
        updated = await cases.find_one_and_update(
            {"_id": _text(case.id, "case_id"), "version": expected_version},
            {"$set": {name: doc[name] for name in MUTABLE_FIELDS}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER)
        if updated is not None:
            return _case_from_mongo(updated)
        if await cases.find_one({"_id": case.id}, {"_id": 1}) is None:
            raise NotFound(f"case {case.id} does not exist")
        raise ConcurrencyConflict(f"case {case.id} changed since version {expected_version}")

    # --- retention (issue 5) ----------------------------------------------------------
    async def purge(self, tombstone: Case, *, expected_version: int) -> Case:
        if not isinstance(expected_version, int) or isinstance(expected_version, bool):
            raise ContractError("expected_version must be an integer", field="version")
        case_id = _text(tombstone.id, "case_id")
        cases = self._store.collection("cases")
        if await cases.find_one({"_id": case_id}, {"_id": 1}) is None:
            raise NotFound(f"case {case_id} does not exist")
        # Deletions first: a crash after them leaves a case without messages that the
        # rerun turns into the tombstone.
        await self._store.collection("messages").delete_many({"case_id": case_id})
        await self._store.collection("mail_threads").delete_many({"case_id": case_id})
        doc = _case_to_mongo(tombstone)
        doc.pop("audit_head")
        doc.pop("version")
        updated = await cases.find_one_and_update(
            {"_id": case_id, "version": expected_version},
            {"$set": {k: v for k, v in doc.items() if k != "_id"}, "$inc": {"version": 1},
             "$unset": {"pending": ""}},
            return_document=ReturnDocument.AFTER)
        if updated is None:
            raise ConcurrencyConflict(f"case {case_id} changed since version {expected_version}")
        return _case_from_mongo(updated)
    # --- end retention ------------------------------------------------------------------

    async def set_status(self, case_id: str, status: str, *, expected_version: int) -> Case:
        if not isinstance(expected_version, int) or isinstance(expected_version, bool):
            raise ContractError("expected_version must be an integer", field="version")
        cases = self._store.collection("cases")
        doc = await cases.find_one_and_update(
            {"_id": _text(case_id, "case_id"), "version": expected_version},
            {"$set": {"status": _text(status, "status")}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER)
        if doc is not None:
            return _case_from_mongo(doc)
        if await cases.find_one({"_id": case_id}, {"_id": 1}) is None:
            raise NotFound(f"case {case_id} does not exist")
        raise ConcurrencyConflict(f"case {case_id} changed since version {expected_version}")


class _Audit:
    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def append(self, event: AuditEvent) -> None:
        case_id = _text(event.case_id, "case_id")
        cases = self._store.collection("cases")
        system = is_system_chain(case_id)  # no case; its head is kept as a record
        if not system and await cases.find_one({"_id": case_id}, {"_id": 1}) is None:
            raise NotFound(f"case {case_id} does not exist")
        try:
            await self._store.collection("audit").insert_one(
                {**_event_to_doc(event), "appended": datetime.now(UTC)})
        except DuplicateKeyError:
            raise ConcurrencyConflict(f"audit seq {event.seq} of {case_id} is taken") from None
        if system:
            return
        # Two appenders may finish out of order; the head only ever moves forward.
        await cases.update_one(
            {"_id": case_id, "$or": [{"audit_head": None},
                                     {"audit_head.seq": {"$lt": event.seq}}]},
            {"$set": {"audit_head": {"seq": event.seq, "hash": event.hash}}})

    async def events(self, case_id: str) -> builtins.list[AuditEvent]:
        cursor = (self._store.collection("audit")
                  .find({"case_id": _text(case_id, "case_id")}, {"_id": 0})
                  .sort("seq", ASCENDING))
        return [_event_from_doc(doc) for doc in await cursor.to_list(None)]

    async def case_ids(self) -> AsyncIterator[str]:
        # Cases and event owners both: a case whose events were all deleted, or events
        # whose case was deleted, must still reach verification.
        ids: set[str] = set()
        async for doc in self._store.collection("cases").find({}, {"_id": 1}):
            ids.add(doc["_id"])
        ids.update(await self._store.collection("audit").distinct("case_id"))
        for case_id in sorted(ids):
            yield case_id

    async def heads_since(self, mark: str | None, *, limit: int | None = None) -> ChainHeads:
        # No commit order to count on: the mark is a time, read back by _APPEND_MARGIN, and
        # no paging by it that would surely progress: ``limit`` is not applied.
        # Events written before ``appended`` existed are read by the first call (None).
        now = datetime.now(UTC)
        query: Document = {}
        since: datetime | None = None
        if mark is not None:
            with contextlib.suppress(ValueError):
                since = _aware(datetime.fromisoformat(mark)) - _APPEND_MARGIN
                query = {"appended": {"$gte": since}}
        heads: dict[str, AuditHead] = {}
        started: set[str] = set()
        async for doc in self._store.collection("audit").find(
                query, {"_id": 0, "case_id": 1, "seq": 1, "hash": 1}):
            seq = int(doc["seq"])
            if seq == 1:
                started.add(doc["case_id"])
            head = heads.get(doc["case_id"])
            if head is None or seq > head.seq:
                heads[doc["case_id"]] = AuditHead(seq, doc["hash"])
        return ChainHeads(heads=heads, started=frozenset(started), mark=now.isoformat(),
                          repeats_from=since)


class _Accounts:
    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def add(self, account: Account) -> None:
        doc: Document = {"_id": _text(account.username, "username"),
                         "password_hash": account.password_hash, "role": account.role,
                         "unit": account.unit, "created_at": account.created_at,
                         "disabled": account.disabled,
                         "must_change_password": account.must_change_password,
                         "employee_id": account.employee_id}
        try:
            await self._store.collection("accounts").insert_one(doc)
        except DuplicateKeyError:
            raise ConcurrencyConflict(f"account {account.username!r} exists") from None

    @staticmethod
    def _from_doc(doc: Mapping[str, Any]) -> Account:
        return Account(username=doc["_id"], password_hash=doc["password_hash"],
                       role=doc["role"], unit=doc["unit"], created_at=_aware(doc["created_at"]),
                       disabled=bool(doc.get("disabled", False)),
                       must_change_password=bool(doc.get("must_change_password", False)),
                       employee_id=doc.get("employee_id"))

    async def get(self, username: str) -> Account | None:
        doc = await self._store.collection("accounts").find_one(
            {"_id": _text(username, "username")})
        return None if doc is None else self._from_doc(doc)

    async def list(self) -> builtins.list[Account]:
        cursor = self._store.collection("accounts").find({}).sort("_id", ASCENDING)
        return [self._from_doc(doc) for doc in await cursor.to_list(None)]

    async def update(self, account: Account) -> None:
        result = await self._store.collection("accounts").update_one(
            {"_id": _text(account.username, "username")},
            {"$set": {"password_hash": account.password_hash, "role": account.role,
                      "unit": account.unit, "disabled": account.disabled,
                      "must_change_password": account.must_change_password,
                      "employee_id": account.employee_id}})
        if result.matched_count != 1:
            raise NotFound(f"account {account.username!r} does not exist")


class _Receipts:
    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def get(self, receipt_hash: str) -> ReceiptRecord | None:
        doc = await self._store.collection("receipts").find_one(
            {"_id": _text(receipt_hash, "receipt_hash")})
        return None if doc is None else ReceiptRecord(doc["_id"], doc["case_id"],
                                                      doc["submission_id"])


class _Sequences:
    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def next(self, name: str) -> int:
        key = _text(name, "name")
        sequences = self._store.collection("sequences")
        for _attempt in range(2):
            try:
                doc = await sequences.find_one_and_update(
                    {"_id": key}, {"$inc": {"value": 1}}, upsert=True,
                    return_document=ReturnDocument.AFTER)
            except DuplicateKeyError:
                continue  # two first-ever upserts raced; the retry finds the document
            if doc is not None:
                return int(doc["value"])
        raise ConcurrencyConflict(f"sequence {key!r} could not be advanced")


class _Keys:
    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def add(self, record: KeyRecord) -> None:
        keys = self._store.collection("keys")
        kid = _text(record.kid, "kid")
        try:
            await keys.insert_one({"_id": kid, "public_key": record.public_key,
                                   "wrapped_private_key": record.wrapped_private_key,
                                   "created_at": record.created_at, "active": True})
        except DuplicateKeyError:
            raise ConcurrencyConflict(f"key {kid} exists") from None
        # New key first, old ones off second: a crash in between leaves two active keys
        # (the newest wins), never none.
        await keys.update_many({"_id": {"$ne": kid}, "active": True},
                               {"$set": {"active": False}})

    async def list(self) -> builtins.list[KeyRecord]:
        cursor = (self._store.collection("keys").find({})
                  .sort([("created_at", ASCENDING), ("_id", ASCENDING)]))
        return [KeyRecord(doc["_id"], bytes(doc["public_key"]),
                          bytes(doc["wrapped_private_key"]), _aware(doc["created_at"]),
                          bool(doc["active"]))
                for doc in await cursor.to_list(None)]


class _Pow:
    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def burn(self, challenge_id: str, expires_at: datetime) -> bool:
        try:
            await self._store.collection("pow").insert_one(
                {"_id": _text(challenge_id, "challenge_id"),
                 "expires_at": _moment(expires_at, "expires_at")})
        except DuplicateKeyError:
            return False
        return True


# --- mail threads (issue 4) ---------------------------------------------------------
class _MailThreads:
    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def remember(self, case_id: str, message_ids: Sequence[str]) -> None:
        threads = self._store.collection("mail_threads")
        owner = _text(case_id, "case_id")
        for message_id in message_ids:
            # One document per Message-ID (_id): the first case to claim it keeps it.
            with contextlib.suppress(DuplicateKeyError):
                await threads.insert_one({"_id": _text(message_id, "message_id"),
                                          "case_id": owner})

    async def case_for(self, message_ids: Sequence[str]) -> str | None:
        ids = [_text(m, "message_id") for m in message_ids]
        if not ids:
            return None
        cursor = self._store.collection("mail_threads").find({"_id": {"$in": ids}})
        found = {doc["_id"]: doc["case_id"] for doc in await cursor.to_list(None)}
        return next((found[m] for m in ids if m in found), None)
# --- end mail threads ------------------------------------------------------------------


# --- casework records (issue 5) --------------------------------------------------------
class _Records:
    def __init__(self, store: MongoStore) -> None:
        self._store = store

    async def put(self, kind: str, key: str, doc: Mapping[str, Any], *,
                  expected_version: int) -> Record:
        kind, key = _text(kind, "kind"), _text(key, "key")
        body = dict(doc)
        records = self._store.collection("records")
        if expected_version == 0:
            try:
                await records.insert_one({"_id": f"{kind}/{key}", "kind": kind, "key": key,
                                          "version": 1, "doc": body})
            except DuplicateKeyError:
                raise ConcurrencyConflict(f"record {kind}/{key} exists") from None
        else:
            result = await records.update_one(
                {"_id": f"{kind}/{key}", "version": int(expected_version)},
                {"$set": {"doc": body, "version": int(expected_version) + 1}})
            if result.matched_count != 1:
                raise ConcurrencyConflict(f"record {kind}/{key} is not at version "
                                          f"{expected_version}")
        return Record(kind, key, body, expected_version + 1)

    async def get(self, kind: str, key: str) -> Record | None:
        doc = await self._store.collection("records").find_one(
            {"_id": f"{_text(kind, 'kind')}/{_text(key, 'key')}"})
        return None if doc is None else Record(kind, key, dict(doc["doc"]), int(doc["version"]))

    async def list(self, kind: str, *, start: str | None = None,
                   limit: int | None = None) -> builtins.list[Record]:
        query: Document = {"kind": _text(kind, "kind")}
        if start is not None:
            query["key"] = {"$gte": _text(start, "start")}
        cursor = self._store.collection("records").find(query).sort("key", ASCENDING)
        if limit is not None:
            cursor = cursor.limit(page_limit(limit))
        return [Record(kind, doc["key"], dict(doc["doc"]), int(doc["version"]))
                for doc in await cursor.to_list(None)]

    async def delete(self, kind: str, key: str) -> bool:
        # delete_many on the unique _id: at most one, and the test shim implements it
        result = await self._store.collection("records").delete_many(
            {"_id": f"{_text(kind, 'kind')}/{_text(key, 'key')}"})
        return bool(result.deleted_count)
# --- end casework records -------------------------------------------------------------


class MongoStore:
    """The :class:`hotline.ports.Store` on one MongoDB database.

    The store owns ``client``: :meth:`close` closes it.
    """

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self._client = client
        self._db = client[database]
        # Annotated with the port types: Store's attributes are mutable, so they must match
        # exactly (and mypy then checks each repository against its protocol).
        self.cases: CaseRepository = _Cases(self)
        self.audit: AuditRepository = _Audit(self)
        self.accounts: AccountRepository = _Accounts(self)
        self.receipts: ReceiptRepository = _Receipts(self)
        self.sequences: SequenceRepository = _Sequences(self)
        self.keys: KeyRepository = _Keys(self)
        self.pow: PowRepository = _Pow(self)
        self.mail_threads: MailThreadRepository = _MailThreads(self)
        self.records: RecordRepository = _Records(self)

    @classmethod
    def from_url(cls, url: str) -> MongoStore:
        """A store on ``mongodb://…/DATABASE`` (database ``hotline`` when the path is empty)."""
        client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
        return cls(client, client.get_default_database("hotline").name)

    def collection(self, name: str) -> Collection:
        return self._db[name]

    async def open(self) -> None:
        cases = self.collection("cases")
        await cases.create_index("submission_id", unique=True)
        await cases.create_index("reference", unique=True)
        await cases.create_index("receipt_hash", unique=True,
                                 partialFilterExpression={"receipt_hash": {"$type": "string"}})
        await cases.create_index([("opened_at", DESCENDING), ("_id", DESCENDING)])
        await cases.create_index([("unit", ASCENDING), ("opened_at", DESCENDING),
                                  ("_id", DESCENDING)])
        await cases.create_index([("due_at", ASCENDING)],
                                 partialFilterExpression={"due_at": {"$type": "date"}})
        await cases.create_index([("fingerprint", ASCENDING)],
                                 partialFilterExpression={"fingerprint": {"$type": "string"}})
        # The queue's "channel" and "assigned to me" filters, newest first.
        await cases.create_index([("channel", ASCENDING), ("opened_at", DESCENDING),
                                  ("_id", DESCENDING)])
        await cases.create_index([("workflow.assignee", ASCENDING), ("opened_at", DESCENDING),
                                  ("_id", DESCENDING)],
                                 partialFilterExpression={"workflow.assignee": {"$type": "string"}})
        # The purge's "past retention" query: only archived cases have a retention end.
        await cases.create_index([("retention_until", ASCENDING)],
                                 partialFilterExpression={"retention_until": {"$type": "date"}})
        await self.collection("audit").create_index(
            [("case_id", ASCENDING), ("seq", ASCENDING)], unique=True)
        await self.collection("audit").create_index([("appended", ASCENDING)])
        await self.collection("messages").create_index(
            [("case_id", ASCENDING), ("at", ASCENDING), ("_id", ASCENDING)])
        await self.collection("keys").create_index([("created_at", ASCENDING)])
        # Sealed attachments (hotline/adapters/mongo_blobs.py) share the database.
        await self.collection("blob_chunks").create_index([("blob", ASCENDING),
                                                           ("n", ASCENDING)], unique=True)
        await self.collection("records").create_index([("kind", ASCENDING), ("key", ASCENDING)])
        # Burnt challenges are only needed until they expire; MongoDB's TTL monitor
        # removes them (within a minute or so of expires_at).
        await self.collection("pow").create_index("expires_at", expireAfterSeconds=0)

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> bool:
        """Whether the server answers within a few seconds (readiness must not hang)."""
        try:
            async with asyncio.timeout(_PING_TIMEOUT):
                await self._client.admin.command("ping")
        except (PyMongoError, TimeoutError):
            return False
        return True
