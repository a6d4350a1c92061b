"""Start Hotline processes for end-to-end tests and stop them (also on failure)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HotlineProcess:
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    def start(self, timeout: float = 30.0) -> HotlineProcess:
        self.output = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline.cli", *self.args], env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        ready = threading.Event()
        # A thread drains the pipe for the whole life of the process, so it never blocks
        # on a full pipe and every line (logs included) is kept for assertions.
        threading.Thread(target=self._drain, args=(ready,), daemon=True).start()
        if ready.wait(timeout) and self.proc.poll() is None:
            return self
        self.kill()
        raise RuntimeError("hotline did not become ready:\n" + "\n".join(self.output))

    def _drain(self, ready: threading.Event) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))
            if line.startswith("Ready."):
                ready.set()
        ready.set()

    def find(self, pattern: str) -> str:
        for line in self.output:
            if match := re.search(pattern, line):
                return match.group(1)
        raise AssertionError(f"{pattern!r} not in output:\n" + "\n".join(self.output))

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def hotline_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update({"HOTLINE_DATA_DIR": str(data_dir), "HOTLINE_POW_DIFFICULTY": "4",
                "HOTLINE_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], stdin: str | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hotline.cli", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False)
