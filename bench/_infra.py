"""Processes a benchmark starts and always stops: Hotline services, baselines, RabbitMQ.

Every process runs in a session of its own, so Ctrl-C in the terminal reaches only the
benchmark, which then stops what it started (SIGTERM, then SIGKILL) by process id.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["BenchError", "Dovecot", "RabbitNode", "Service", "dovecot_binary", "free_port",
           "machine", "run_hotline"]


class BenchError(RuntimeError):
    """A benchmark could not set up what it needs (the message says what)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def machine() -> dict[str, Any]:
    """What the numbers came from: cores, memory, CPU model, Python, load at start."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "memory_mb": round(psutil.virtual_memory().total / 2**20),
            "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}


def hotline_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a Hotline process: a private data dir, no proof of work."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({"HOTLINE_DATA_DIR": str(data_dir), "HOTLINE_POW_DIFFICULTY": "0",
                "HOTLINE_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_hotline(args: list[str], env: dict[str, str], timeout: float = 60.0) -> str:
    """Run a short ``hotline`` command (e.g. ``keys rotate``); its output, or BenchError."""
    result = subprocess.run([sys.executable, "-m", "hotline.cli", *args], env=env,  # noqa: S603 — our own interpreter and fixed arguments
                            capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise BenchError(f"hotline {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout


@dataclass
class Service:
    """A server process (``hotline …`` or a baseline) with its resource figures."""

    label: str
    argv: list[str]
    env: dict[str, str]
    log_file: Path
    proc: subprocess.Popen[bytes] | None = None
    _ps: psutil.Process | None = None
    _peak_rss: int = 0

    def start(self, timeout: float = 60.0) -> Service:
        """Start and wait for the ``Ready.`` line; BenchError with the log tail if not."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out,  # noqa: S603 — argv built by the bench
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self._ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if b"Ready." in self.log_file.read_bytes():
                return self
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise BenchError(f"{self.label} did not become ready:\n{tail}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the process so far."""
        assert self._ps is not None
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        assert self._ps is not None
        value = int(self._ps.memory_info().rss)
        self._peak_rss = max(self._peak_rss, value)
        return value

    def reset_peak(self) -> None:
        """Reset the kernel's peak-RSS mark (VmHWM) so a phase's own peak can be read."""
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self._peak_rss = 0

    def peak_rss(self) -> int:
        """Peak RSS since start (or the last :meth:`reset_peak`), from VmHWM when readable."""
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return max(int(line.split()[1]) * 1024, self._peak_rss)
        return max(self._peak_rss, self.rss())

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; only this process's own group."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


_USER = "rabbitmq"  # the Debian package's user: owns the Erlang cookie
_HOME = Path("/var/lib/rabbitmq")
_LIB_BIN = Path("/usr/lib/rabbitmq/bin")


def _rabbit_executable(name: str) -> str:
    direct = _LIB_BIN / name
    if os.geteuid() == 0 and direct.exists():
        # The /usr/sbin wrappers re-run these through `su`, in a session no signal of
        # ours reaches; as root we run the real scripts as the rabbitmq user ourselves.
        return str(direct)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/lib/rabbitmq/bin")
    if found is None:
        raise BenchError(f"{name} is not installed (apt-get install -y rabbitmq-server)")
    return found


@dataclass
class RabbitNode:
    """A private RabbitMQ node on free loopback ports, with a private epmd."""

    base: Path
    name: str = field(default_factory=lambda: f"hotline-bench-{os.getpid()}@localhost")
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _env(self) -> dict[str, str]:
        return {**os.environ, **({"HOME": str(_HOME)} if os.geteuid() == 0 else {}),
                "ERL_EPMD_PORT": str(self.epmd_port)}

    def _as_rabbitmq(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        return {"user": _USER, "group": _USER, "extra_groups": [], "cwd": _HOME}

    def start(self, timeout: float = 90.0) -> RabbitNode:
        server = _rabbit_executable("rabbitmq-server")
        for sub in ("mnesia", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        self.base.chmod(0o755)
        if os.geteuid() == 0:
            # Started as root, the node runs as user rabbitmq: it must own its dirs.
            for path in (self.base, *self.base.rglob("*")):
                shutil.chown(path, _USER, _USER)
        env = {**self._env(), "RABBITMQ_NODENAME": self.name,
               "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
               "RABBITMQ_DIST_PORT": str(self.dist_port),
               "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
               "RABBITMQ_LOG_BASE": str(self.base / "log"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins")}
        with (self.base / "server.out").open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 — the installed rabbitmq-server script
                [server], env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         **self._as_rabbitmq())
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.base / "server.out").read_text(errors="replace")[-2000:]
                self.stop()
                raise BenchError(f"RabbitMQ did not start:\n{tail}")
            remaining = max(1, int(deadline - time.monotonic()))
            # await_startup exits 69 at once while the Erlang node is not reachable yet.
            result = subprocess.run(  # noqa: S603 — the installed rabbitmqctl script
                [_rabbit_executable("rabbitmqctl"), "-n", self.name, "await_startup",
                 "--timeout", str(remaining)], env=self._env(), capture_output=True,
                timeout=remaining + 10, check=False, **self._as_rabbitmq())
            if result.returncode == 0:
                return self
            time.sleep(0.2)

    def processes(self) -> list[psutil.Process]:
        """The node's process tree (wrapper script, beam.smp, helpers)."""
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def rss(self) -> int:
        total = 0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                total += int(process.memory_info().rss)
        return total

    def _epmd(self) -> list[psutil.Process]:
        """The epmd daemon this node started (on its private port), if any."""
        found = []
        for process in psutil.process_iter(["name"]):
            if process.info["name"] != "epmd":
                continue
            with contextlib.suppress(psutil.Error):
                if process.environ().get("ERL_EPMD_PORT") == str(self.epmd_port):
                    found.append(process)
        return found

    def stop(self, timeout: float = 20.0) -> None:
        """Stop this node's process group, then the private epmd it spawned."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        for epmd in self._epmd():
            with contextlib.suppress(psutil.Error):
                epmd.kill()


DOVECOT_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = {name}-{port}
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 8
mail_location = maildir:{root}/mail/%u/Maildir
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
stats_writer_socket_path =
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid=mail gid=mail
}}
"""


def dovecot_binary() -> str | None:
    """The dovecot executable, or None when it is not installed."""
    found = shutil.which("dovecot")
    if found is None and Path("/usr/sbin/dovecot").exists():
        found = "/usr/sbin/dovecot"
    return found


@dataclass
class Dovecot:
    """A private Dovecot IMAP instance (one user), as INFRA.md describes."""

    root: Path
    user: str
    password: str
    port: int = field(default_factory=free_port)

    def start(self, timeout: float = 20.0) -> Dovecot:
        binary = dovecot_binary()
        if binary is None:
            raise BenchError("dovecot is not installed (apt-get install -y dovecot-imapd)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        (self.root / "mail").mkdir(exist_ok=True)
        shutil.chown(self.root / "mail", "mail", "mail")
        passwd = self.root / "passwd"
        passwd.write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        passwd.chmod(0o644)
        config = self.root / "dovecot.conf"
        config.write_text(DOVECOT_CONFIG.format(root=self.root, port=self.port,
                                                name="hotline-bench"))
        env = {**os.environ, "PATH": f"/usr/sbin:/usr/bin:{os.environ.get('PATH', '')}"}
        with (self.root / "start.log").open("wb") as out:
            subprocess.run([binary, "-c", str(config)], stdout=out,  # noqa: S603 — installed dovecot
                           stderr=out, env=env, check=False, timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1) as sock:
                if sock.recv(64).startswith(b"* OK"):
                    return self
            time.sleep(0.05)
        self.stop()
        raise BenchError("dovecot did not start: "
                         + (self.root / "start.log").read_text(errors="replace")[-1000:])

    def deliver(self, raw: bytes) -> None:
        """Drop a mail into ``Maildir/new`` as an MDA would (write, then rename)."""
        maildir = self.root / "mail" / self.user / "Maildir"
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
            shutil.chown(maildir / sub, "mail", "mail")
        name = f"{time.time_ns()}.P{os.getpid()}.hotline-bench"
        temporary = maildir / "tmp" / name
        temporary.write_bytes(raw)
        shutil.chown(temporary, "mail", "mail")
        temporary.rename(maildir / "new" / name)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to this instance's master (by its pid file), waiting for it to exit."""
        try:
            pid = int((self.root / "run" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and psutil.pid_exists(pid):
            time.sleep(0.05)
