"""The ``hotline`` command line (CONTRACT §1).

The shared kernel must not import the service packages, so the service entry points are
loaded by name (``intake.app``, ``router.app``, ``casework.app``) when a command needs
them: this module is the composition root.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import importlib
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hotline.bootstrap import make_bus, make_store
from hotline.checkpoints import checkpoint_public_key, make_checkpoint, verify_everything
from hotline.crypto import MasterKey, ReceiptKeys
from hotline.errors import HotlineError, SettingsError
from hotline.logging import configure_logging, get_logger
from hotline.mail.config import load_mailboxes
from hotline.org import OrgTree, load_org
from hotline.ports import Bus, Store
from hotline.services import add_account, rotate_keys
from hotline.settings import Settings, load_settings

__all__ = ["main"]

_log = get_logger("hotline.cli")


def _say(text: str) -> None:
    print(text, flush=True)


@contextlib.asynccontextmanager
async def _opened(settings: Settings, *,
                  bus: bool = True) -> AsyncIterator[tuple[Store, Bus | None]]:
    store = make_store(settings)
    await store.open()
    the_bus = make_bus(settings) if bus else None
    try:
        if the_bus is not None:
            await the_bus.open()
        yield store, the_bus
    finally:
        if the_bus is not None:
            await the_bus.close()
        await store.close()


async def _serve(sites: Sequence[tuple[web.Application, str, int, str]],
                 banner: Sequence[str] = ()) -> None:
    """Run web apps until SIGINT/SIGTERM; print where each one listens."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    try:
        for app, host, port, label in sites:
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
            bound = runner.addresses[0][1] if runner.addresses else port
            _say(f"  {label}: http://{host}:{bound}/")
        for line in banner:
            _say(line)
        _say("Ready. Stop with Ctrl-C.")
        await stop.wait()
    finally:
        _say("Stopping…")
        for runner in reversed(runners):
            await runner.cleanup()


def _service(name: str) -> Any:
    return importlib.import_module(name)


async def _first_start(settings: Settings, store: Store, org: OrgTree) -> list[str]:
    """Create keys and the admin account on a fresh data dir; lines to show once."""
    master = MasterKey.load(settings.master_key_file, create=True)
    ReceiptKeys.load(settings.receipt_key_file, create=True)
    lines: list[str] = []
    if not await store.keys.list():
        record = await rotate_keys(store, master)
        lines.append(f"Created the organisation key {record.kid} ({record.fingerprint}).")
        lines.append(f"Back up {settings.master_key_file}: without it sealed reports "
                     "cannot be opened.")
    if not await store.accounts.list():
        _, password = await add_account(store, org, "admin", unit=org.root.code, role="admin")
        lines.append(f"Sign in as 'admin' with this one-time password: {password}")
    return lines


async def _dev(settings: Settings, args: argparse.Namespace) -> int:
    org = load_org()
    if settings.public_base_url is None:  # links to the public pages (survey) point here
        settings = settings.with_overrides(
            public_base_url=f"http://{args.host}:{args.public_port}")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with _opened(settings) as (store, bus):
        assert bus is not None
        banner = await _first_start(settings, store, org)
        master = MasterKey.load(settings.master_key_file)
        receipts = ReceiptKeys.load(settings.receipt_key_file)
        intake, router_app, router_worker, casework = (
            _service("intake.app"), _service("router.app"), _service("router.worker"),
            _service("casework.app"))
        router = router_worker.Router(store=store, bus=bus, org=org, master=master,
                                      mail=_service("router.mail").mail_desk(settings, org))
        consumer = asyncio.gather(router_app.run_consumer(router),
                                  router_app.clock_runner(router, settings).run())
        _say(f"Hotline (embedded mode), data in {settings.data_dir}")
        public_app = intake.create_app(intake.IntakeDeps(settings, store, bus, org, receipts))
        _with_mail(public_app, settings, store, bus, router, host=args.host,
                   smtp_port=args.smtp_port, port_optional=args.smtp_port == 2525)
        banner = [*banner,
                  f"Reporters' pages: http://{args.host}:{args.public_port}/  "
                  f"Officers' UI: http://{args.host}:{args.internal_port}/ui/"]
        try:
            await _serve([
                (public_app, args.host, args.public_port, "public  "),
                (casework.create_app(casework.CaseworkDeps(settings, store, bus, org, master,
                                                           receipts)),
                 args.host, args.internal_port, "internal"),
            ], banner)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
    return 0


# --- audit checkpoints (issue 5) ------------------------------------------------------
def _read_public_key(path: Path) -> bytes:
    """A checkpoint public key file: PEM, or the base64 of the raw 32 bytes."""
    text = path.read_bytes()
    if text.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raw = base64.b64decode(text.strip(), validate=True)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return raw


async def _audit_checkpoints(settings: Settings, args: argparse.Namespace) -> int:
    """``audit checkpoint`` signs one now; ``audit public-key`` prints the key as PEM."""
    async with _opened(settings, bus=False) as (store, _):
        if args.action == "checkpoint":
            record = await make_checkpoint(store, MasterKey.load(settings.master_key_file))
            _say("no audit chain moved since the last checkpoint" if record is None else
                 f"checkpoint {record.doc['n']} signed over {len(record.doc['heads'])} chain(s)")
            return 0
        raw = await checkpoint_public_key(store)
        if raw is None:
            _say("error: no checkpoint has been signed yet")
            return 1
        print(Ed25519PublicKey.from_public_bytes(raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(), end="")
        return 0
# --- end audit checkpoints -------------------------------------------------------------


# --- complaint mail (issue 4) --------------------------------------------------------
def _with_mail(app: web.Application, settings: Settings, store: Store, bus: Bus,
               router: Any, *, host: str, smtp_port: int | None,
               port_optional: bool = False) -> None:
    """Attach mail to ``app``: with ``router``, delivery of outbound mail (router side);
    with an SMTP port or IMAP mailboxes, mail ingestion (intake side). Embedded mode
    (``hotline dev``) does both; ``hotline intake`` reads mail only when
    ``HOTLINE_SMTP_PORT`` is set or a mailbox has IMAP settings."""
    if router is not None:
        app.cleanup_ctx.append(_service("router.mail").outbound_mail(router, settings))
        if smtp_port is None:
            return  # the distributed router: no ingestion
    book = load_mailboxes(load_org(), settings.mail_domain, settings.mailboxes_file)
    if not smtp_port and not book.imap_mailboxes():
        return
    receiver = _service("intake.mail_receiver")
    app.cleanup_ctx.append(receiver.mail_ingestion(
        settings, book, store, bus, host=host, smtp_port=smtp_port, announce=_say,
        port_optional=port_optional))
# --- end complaint mail ---------------------------------------------------------------


async def _run_service(settings: Settings, args: argparse.Namespace) -> int:
    org = load_org()
    port = args.port if args.port is not None else (settings.port or 0)
    async with _opened(settings) as (store, bus):
        assert bus is not None
        if args.command == "intake":
            intake = _service("intake.app")
            receipts = ReceiptKeys.load(settings.receipt_key_file)
            app = intake.create_app(intake.IntakeDeps(settings, store, bus, org, receipts))
            _with_mail(app, settings, store, bus, None, host=args.host,
                       smtp_port=settings.smtp_port)
        elif args.command == "router":
            router_app, router_worker = _service("router.app"), _service("router.worker")
            master = MasterKey.load(settings.master_key_file)
            router = router_worker.Router(store=store, bus=bus, org=org, master=master,
                                          mail=_service("router.mail").mail_desk(settings, org))
            app = router_app.create_app(router, settings)
            _with_mail(app, settings, store, bus, router, host=args.host, smtp_port=None)
        else:
            casework = _service("casework.app")
            master = MasterKey.load(settings.master_key_file)
            # With intake's receipt key, manual intake hands out follow-up receipts too.
            receipt_keys = ReceiptKeys.load(settings.receipt_key_file) \
                if settings.receipt_key_file.exists() else None
            app = casework.create_app(casework.CaseworkDeps(settings, store, bus, org, master,
                                                            receipt_keys))
        _say(f"Hotline {args.command}")
        await _serve([(app, args.host, port, args.command)])
    return 0


async def _officer_add(settings: Settings, args: argparse.Namespace) -> int:
    org = load_org()
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    async with _opened(settings, bus=False) as (store, _):
        try:
            account, generated = await add_account(store, org, args.username, unit=args.unit,
                                                   role=args.role, password=password,
                                                   employee_id=args.employee_id)
        except ValueError as exc:
            _say(f"error: {exc}")
            return 2
        except HotlineError as exc:
            _say(f"error: {exc}")
            return 1
    _say(f"Created {account.role} '{account.username}' in unit {account.unit}.")
    if generated:
        _say(f"One-time password: {generated}")
    return 0


async def _audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    if args.action != "verify":
        return await _audit_checkpoints(settings, args)
    async with _opened(settings, bus=False) as (store, _):
        case_ids = None
        if args.case:
            case = await store.cases.by_reference(args.case) or await store.cases.get(args.case)
            if case is None:
                _say(f"error: no case {args.case}")
                return 2
            case_ids = [case.id]
        public_key = None
        if args.public_key:
            try:
                public_key = _read_public_key(Path(args.public_key))
            except (OSError, ValueError) as exc:
                _say(f"error: --public-key: {exc}")
                return 2
        full = await verify_everything(store, public_key, case_ids)
        report = full.chains
        if full.ok:
            _say(f"audit intact: {report.cases} case(s), {report.events} event(s) verified")
            if full.checkpoints is not None:
                _say(f"checkpoints intact: {full.checkpoints.checkpoints} signed checkpoint(s)"
                     f" over {full.checkpoints.chains} chain(s), latest "
                     f"{full.checkpoints.latest_at}")
            return 0
        if report.ok:
            report = replace(report, first_broken=full.first_broken)
        broken = report.first_broken
        assert broken is not None
        case = await store.cases.get(broken.case_id)
        name = f"{case.reference} ({broken.case_id})" if case else broken.case_id
        _say(f"audit BROKEN: case {name}, event seq {broken.seq}: {broken.reason}")
        return 1


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    async with _opened(settings, bus=False) as (store, _):
        if args.action == "rotate":
            master = MasterKey.load(settings.master_key_file, create=True)
            ReceiptKeys.load(settings.receipt_key_file, create=True)
            record = await rotate_keys(store, master)
            _say(f"new active key {record.kid} fingerprint {record.fingerprint}")
            return 0
        records = await store.keys.list()
        if not records:
            _say("no keys yet; run 'hotline keys rotate'")
            return 1
        for record in records:
            state = "active" if record.active else "retired (opens old cases)"
            _say(f"{record.kid}  {record.fingerprint}  {record.created_at:%Y-%m-%d}  {state}")
        return 0


async def _queue(settings: Settings, args: argparse.Namespace) -> int:
    async with _opened(settings) as (_, bus):
        assert bus is not None
        if args.action == "list":
            parked = await bus.parked(args.limit)
            for message in parked:
                _say(f"{message.message_id}  {message.routing_key}  deliveries="
                     f"{message.delivery_count}  {len(message.body)} bytes")
            _say(f"{len(parked)} parked message(s)")
            return 0
        moved = await bus.replay_parked(args.id)
        _say(f"replayed {moved} message(s)")
        return 0


def _config_check(path: Path) -> int:
    """Validate a units, leaders, triage-rules, workflows or holidays file."""
    from hotline.triage import validate_config

    problems = validate_config(path)
    for problem in problems:
        _say(str(problem))
    if not problems:
        _say(f"{path}: OK")
    return 1 if problems else 0


# --- retention (issue 5) ----------------------------------------------------------------
async def _purge(settings: Settings, args: argparse.Namespace) -> int:
    """Purge the cases whose retention ended (hotline/retention.py); --dry-run lists them."""
    from hotline.clock import utcnow
    from hotline.mail.outbound import OutboxDelivery
    from hotline.retention import Purger, describe, make_blob_store
    from hotline.services import load_keyring

    async with _opened(settings, bus=False) as (store, _):
        master = MasterKey.load(settings.master_key_file)

        async def keyring() -> Any:
            return await load_keyring(store, master)

        purger = Purger(store, make_blob_store(settings, store), keyring, actor="cli",
                        outbox=OutboxDelivery(settings.data_dir / "outbox"))
        report = await purger.run(utcnow(), dry_run=args.dry_run)
    for line in describe(report):
        _say(line)
    if args.dry_run:
        _say("dry run: nothing was changed")
    return 0
# --- end retention ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def with_data(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data", help="data directory (default ./hotline-data or "
                                      "HOTLINE_DATA_DIR)")
        return p

    dev = with_data(sub.add_parser("dev", help="embedded mode: everything in one process"))
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--public-port", type=int, default=8080)
    dev.add_argument("--internal-port", type=int, default=8081)
    dev.add_argument("--smtp-port", type=int, default=2525)

    officer = sub.add_parser("officer", help="officer accounts")
    officer_sub = officer.add_subparsers(dest="action", required=True)
    add = with_data(officer_sub.add_parser("add", help="create an account"))
    add.add_argument("username")
    add.add_argument("--unit", required=True)
    add.add_argument("--role", required=True,
                     choices=["clerk", "officer", "supervisor", "auditor", "admin"])
    add.add_argument("--password-stdin", action="store_true")
    add.add_argument("--employee-id", help="the officer's employee id: cases naming it as "
                                          "subject or management line are never shown to them")

    audit = sub.add_parser("audit", help="audit trail")
    audit_sub = audit.add_subparsers(dest="action", required=True)
    verify = with_data(audit_sub.add_parser("verify", help="recompute the hash chains"))
    verify.add_argument("--case", help="only this case (reference or id)")
    verify.add_argument("--public-key", help="check the signed checkpoints with this Ed25519 "
                        "public key (PEM or base64); default: the key recorded in the store")
    with_data(audit_sub.add_parser("checkpoint", help="sign a checkpoint over all chain heads"))
    with_data(audit_sub.add_parser("public-key", help="print the checkpoint public key (PEM)"))

    keys = sub.add_parser("keys", help="organisation sealing keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    with_data(keys_sub.add_parser("show", help="list keys"))
    with_data(keys_sub.add_parser("rotate", help="create a new active key pair"))

    config = sub.add_parser("config", help="configuration files")
    config_sub = config.add_subparsers(dest="action", required=True)
    check = config_sub.add_parser("check", help="validate a config file")
    check.add_argument("file", type=Path)

    queue = sub.add_parser("queue", help="bus operations")
    queue_sub = queue.add_subparsers(dest="target", required=True)
    dead = queue_sub.add_parser("dead", help="the parking queue")
    dead_sub = dead.add_subparsers(dest="action", required=True)
    dead_list = with_data(dead_sub.add_parser("list", help="show parked messages"))
    dead_list.add_argument("--limit", type=int, default=100)
    replay = with_data(dead_sub.add_parser("replay", help="put parked messages back"))
    replay.add_argument("--id", help="only this message id")

    purge = with_data(sub.add_parser("purge", help="purge cases whose retention ended"))
    purge.add_argument("--dry-run", action="store_true", help="list them, change nothing")

    for name in ("intake", "router", "casework"):
        service = with_data(sub.add_parser(name, help=f"run the {name} service"))
        service.add_argument("--host", default="127.0.0.1")
        service.add_argument("--port", type=int)
    return parser


def _release_large_buffers_when_freed() -> None:
    """Pin glibc's mmap threshold, so large buffers go back to the system when freed.

    By default glibc raises the threshold to the largest block freed so far (up to
    32 MiB): after one large report, the next ones' request bodies, texts and messages
    come from the heap and stay resident after use, and a 10 MB report cost 8 copies of
    RSS in intake where at most 4 are alive at once (issue 7). Other C libraries: no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold = -3  # <malloc.h>; setting it also turns the dynamic raise off
    mallopt(m_mmap_threshold, 128 * 1024)  # glibc's default starting value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        # `hotline bench …` (issue 7): the benchmarks live outside the kernel and are
        # loaded only when asked for; they read no Hotline settings of their own.
        bench: Any = importlib.import_module("bench")
        return int(bench.main(argv[1:]))
    args = _parser().parse_args(argv)
    if args.command == "config":
        return _config_check(args.file)
    try:
        settings = load_settings(data_dir=getattr(args, "data", None))
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    if args.command in ("dev", "intake", "router", "casework"):
        _release_large_buffers_when_freed()
    handlers = {"dev": _dev, "officer": _officer_add, "audit": _audit_verify, "keys": _keys,
                "queue": _queue, "intake": _run_service, "router": _run_service,
                "casework": _run_service, "purge": _purge}
    try:
        return asyncio.run(handlers[args.command](settings, args))
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except HotlineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
