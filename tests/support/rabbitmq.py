"""pytest plugin: a private RabbitMQ node per test session, a fresh vhost per test.

``rabbitmq_node`` (session) starts one throw-away node on free loopback ports in a temp
dir, with the management plugin on so that a vhost costs milliseconds, not a CLI call.
``rabbitmq_url`` (session) is the AMQP URL of its default vhost; ``amqp_url``
(function) is the URL of a vhost created for one test and deleted after it. Tests that
need to break the broker (drop connections, stop it) use the :class:`RabbitNode` the
``rabbitmq_node`` fixture yields; ``amqp_url`` starts the node again if an earlier test
stopped or killed it.

Fails (never skips) when ``rabbitmq-server`` is missing: CI installs it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["RabbitNode", "amqp_url", "free_port", "rabbitmq_node", "rabbitmq_url"]

STARTUP_TIMEOUT = 60.0
_SERVER = "rabbitmq-server"
_CTL = "rabbitmqctl"
_USER = "rabbitmq"  # the Debian package's user: owns the Erlang cookie
_HOME = Path("/var/lib/rabbitmq")  # where that cookie lives
# The Debian scripts in /usr/sbin re-run these through `su rabbitmq`, which puts the
# node in a session of its own that no signal of ours reaches (it outlives a killed
# test run). As root we run the real scripts as that user ourselves instead.
_LIB_BIN = Path("/usr/lib/rabbitmq/bin")


def _executable(name: str) -> str:
    direct = _LIB_BIN / name
    if os.geteuid() == 0 and direct.exists():
        return str(direct)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/lib/rabbitmq/bin")
    if found is None:
        pytest.fail(f"{name} is not installed; install it with `apt-get install -y "
                    "rabbitmq-server` (the integration tests need a real broker)", pytrace=False)
    return found


def _as_rabbitmq() -> dict[str, Any]:
    """subprocess arguments that run a RabbitMQ script as the rabbitmq user when root."""
    if os.geteuid() != 0:
        return {}
    return {"user": _USER, "group": _USER, "extra_groups": [], "cwd": _HOME}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RabbitNode:
    """One private RabbitMQ node: its ports, its directory and the process running it."""

    name: str
    base: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The AMQP URL of the default vhost."""
        return self.vhost_url("/")

    def vhost_url(self, vhost: str) -> str:
        path = "%2F" if vhost == "/" else vhost
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{path}"

    @property
    def log_file(self) -> Path:
        return self.base / "log" / f"{self.name}.log"

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start the node (again, after :meth:`stop`) and wait until it serves AMQP."""
        server = _executable(_SERVER)
        self._prepare_dirs()
        env = {
            **os.environ,
            **({"HOME": str(_HOME)} if os.geteuid() == 0 else {}),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
        }
        output = (self.base / "server.out").open("ab")
        # A session of its own, so that stop() and kill() can signal the whole process
        # tree (script, beam, its helpers) and nothing else.
        self.process = subprocess.Popen(
            [server], env=env, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, **_as_rabbitmq())
        output.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self.kill()
                pytest.fail(f"RabbitMQ node {self.name} exited during startup:\n"
                            f"{self._tail()}", pytrace=False)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                pytest.fail(f"RabbitMQ node {self.name} not up after {timeout:.0f} s:\n"
                            f"{self._tail()}", pytrace=False)
            # await_startup exits 69 at once while the Erlang node is not reachable yet.
            result = self._run_ctl("await_startup", "--timeout", str(max(1, int(remaining))),
                                   check=False, timeout=remaining + 5)
            if result.returncode == 0:
                return
            time.sleep(0.2)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop this node (only this one: its own process group), waiting for the exit."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # SIGTERM is a graceful shutdown (the script forwards it, beam handles it);
        # SIGKILL is the fallback.
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            self._wait_group_gone(process.pid, wait)
            return

    def kill(self) -> None:
        """SIGKILL the node, as a crash would (≈ 0.1 s instead of a graceful stop's 3-4 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self._wait_group_gone(process.pid, 5.0)

    def ensure_running(self) -> None:
        """Start the node again if a test stopped or killed it."""
        if self.process is None or self.process.poll() is not None:
            self.start()

    def restart(self) -> None:
        """Stop and start the node on the same ports and data (messages survive)."""
        self.stop()
        self.start()

    def stop_app(self) -> None:
        """Stop the RabbitMQ application (AMQP refused) but keep the Erlang node."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        """Start the application again after :meth:`stop_app`."""
        self.ctl("start_app")
        self.ctl("await_startup")

    def close_all_connections(self, reason: str = "test") -> None:
        """Force-close every client connection of every vhost, as a broker restart would."""
        # Without --global, rabbitmqctl closes only the connections of vhost "/".
        self.ctl("close_all_connections", "--global", reason)

    def client_ports(self) -> set[int]:
        """The client-side TCP ports of the AMQP connections open right now (all vhosts)."""
        output = self.ctl("list_connections", "peer_port", "--quiet", "--no-table-headers")
        return {int(line) for line in output.split() if line.isdigit()}

    def ctl(self, *args: str) -> str:
        """Run ``rabbitmqctl -n NODE ARGS`` and return its stdout; fail the test if it fails."""
        result = self._run_ctl(*args, check=False)
        if result.returncode != 0:
            pytest.fail(f"rabbitmqctl {' '.join(args)} failed ({result.returncode}):\n"
                        f"{result.stdout}{result.stderr}", pytrace=False)
        return result.stdout

    def add_vhost(self, vhost: str) -> str:
        """Create ``vhost`` with full permissions for ``guest``; its AMQP URL."""
        self._management("PUT", f"/api/vhosts/{vhost}", {})
        self._management("PUT", f"/api/permissions/{vhost}/guest",
                         {"configure": ".*", "write": ".*", "read": ".*"})
        return self.vhost_url(vhost)

    def delete_vhost(self, vhost: str) -> None:
        self._management("DELETE", f"/api/vhosts/{vhost}", None)

    def _run_ctl(self, *args: str, check: bool,
                 timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **({"HOME": str(_HOME)} if os.geteuid() == 0 else {})}
        return subprocess.run([_executable(_CTL), "-n", self.name, *args], env=env,
                              capture_output=True, text=True, check=check, timeout=timeout,
                              **_as_rabbitmq())

    def _management(self, method: str, path: str, document: object) -> None:
        data = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.management_port}{path}", data=data, method=method,
            headers={"content-type": "application/json",
                     "authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
        try:
            for attempt in range(5):
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        response.read()
                    return
                except urllib.error.HTTPError as exc:
                    # Just after a node restart, its quorum queues may still be starting
                    # and the management API answers 500 for a while (seen on a busy host).
                    if exc.code < 500 or attempt == 4:
                        raise
                    time.sleep(1.0)
        except urllib.error.HTTPError as exc:
            pytest.fail(f"RabbitMQ management {method} {path}: {exc.code} {exc.read()!r}",
                        pytrace=False)
        except urllib.error.URLError as exc:
            pytest.fail(f"RabbitMQ management {method} {path}: {exc.reason}", pytrace=False)

    def _prepare_dirs(self) -> None:
        (self.base / "mnesia").mkdir(parents=True, exist_ok=True)
        (self.base / "log").mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (self.base / "rabbitmq.conf").write_text(
            f"management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {self.management_port}\n")
        # Started as root, the wrapper runs the node as user rabbitmq: it must own (and
        # be able to reach) every directory it writes to.
        self.base.chmod(0o755)
        if os.geteuid() == 0:
            for path in (self.base, *self.base.rglob("*")):
                shutil.chown(path, _USER, _USER)

    def _tail(self, lines: int = 40) -> str:
        text = ""
        for path in (self.base / "server.out", self.log_file):
            if path.exists():
                text += f"--- {path}\n" + "\n".join(
                    path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    @staticmethod
    def _wait_group_gone(pgid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


@pytest.fixture(scope="session")
def rabbitmq_node() -> Iterator[RabbitNode]:
    """A private RabbitMQ node for the whole test session, stopped and removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="hotline-rabbitmq-"))
    node = RabbitNode(name=f"hotline-{os.getpid()}-{secrets.token_hex(3)}@localhost",
                      base=base)
    try:
        node.start()
        yield node
    finally:
        node.kill()  # throw-away data: no need to wait for a graceful shutdown
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def rabbitmq_url(rabbitmq_node: RabbitNode) -> str:
    """AMQP URL of the session node's default vhost (shared by every test using it)."""
    rabbitmq_node.ensure_running()
    return rabbitmq_node.url


@pytest.fixture
def amqp_url(rabbitmq_node: RabbitNode) -> Iterator[str]:
    """AMQP URL of a vhost of its own for one test, deleted afterwards."""
    rabbitmq_node.ensure_running()
    vhost = f"test-{secrets.token_hex(6)}"
    url = rabbitmq_node.add_vhost(vhost)
    try:
        yield url
    finally:
        if rabbitmq_node.process is not None:
            rabbitmq_node.delete_vhost(vhost)
