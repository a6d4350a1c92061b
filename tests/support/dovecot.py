"""pytest plugin: a private Dovecot IMAP server per test (``dovecot`` fixture).

Started as INFRA.md describes: its own base/state dirs and instance name, loopback only,
plaintext auth from a passwd-file, a static userdb as user ``mail``, Maildir under a
temporary directory. Dovecot must be installed (Debian: ``dovecot-imapd``); without it
the fixture fails with a message saying so rather than skipping silently.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench._infra import DOVECOT_CONFIG  # one private-instance recipe for tests and bench

__all__ = ["Dovecot", "dovecot"]



def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Dovecot:
    """A running private Dovecot: where it listens and who may sign in."""

    host: str
    port: int
    root: Path
    config: Path
    users: dict[str, str]

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"

    def deliver(self, user: str, raw: bytes) -> Path:
        """Drop a mail into ``Maildir/new`` as an MDA would (rename after write)."""
        maildir = self.maildir(user)
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
            shutil.chown(maildir / sub, "mail", "mail")
        name = f"{time.time_ns()}.P{os.getpid()}.hotline-test"
        temporary = maildir / "tmp" / name
        temporary.write_bytes(raw)
        shutil.chown(temporary, "mail", "mail")
        final = maildir / "new" / name
        temporary.rename(final)
        return final

    def stop(self) -> None:
        """SIGTERM to this instance's master only (never by name).

        The master needs about 3 s to wind down; the test does not wait for it (its
        listener is gone at once, and the next test uses a new port and directory).
        """
        pid_file = self.root / "run" / "master.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _wait_for_greeting(host: str, port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection((host, port), timeout=1) as sock:
                if sock.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"dovecot did not answer on {host}:{port}")
        time.sleep(0.02)


@contextlib.contextmanager
def running_dovecot(users: dict[str, str]) -> Iterator[Dovecot]:
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot"
                                         if Path("/usr/sbin/dovecot").exists() else None)
    if binary is None:
        pytest.fail("dovecot is not installed: apt-get install -y dovecot-imapd "
                    "(the IMAP integration tests need a real server)", pytrace=False)
    # Not under tmp_path: pytest's directories are 0700 root, and Dovecot accesses the
    # Maildir as user "mail".
    root = Path(tempfile.mkdtemp(prefix="hotline-dovecot-"))
    root.chmod(0o755)
    port = _free_port()
    (root / "mail").mkdir()
    shutil.chown(root / "mail", "mail", "mail")
    passwd = root / "passwd"
    passwd.write_text("".join(f"{user}:{{PLAIN}}{password}\n"
                              for user, password in users.items()))
    passwd.chmod(0o644)
    config = root / "dovecot.conf"
    config.write_text(DOVECOT_CONFIG.format(root=root, port=port, name="hotline-test"))
    env = {**os.environ, "PATH": f"/usr/sbin:/usr/bin:{os.environ.get('PATH', '')}"}
    # Output to a file, not a pipe: the daemonised master keeps inherited pipes open.
    with open(root / "start.log", "wb") as output:
        started = subprocess.run([binary, "-c", str(config)], stdout=output, stderr=output,
                                 stdin=subprocess.DEVNULL, timeout=20, env=env, check=False)
    if started.returncode != 0:
        message = (root / "start.log").read_text(errors="replace").strip()
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"dovecot did not start: {message}")
    server = Dovecot("127.0.0.1", port, root, config, dict(users))
    try:
        _wait_for_greeting(server.host, port, time.monotonic() + 10)
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A fresh Dovecot with one account, ``complaints-gd`` / ``imap-test-password``."""
    with running_dovecot({"complaints-gd": "imap-test-password"}) as server:
        yield server
