"""A real `sigmax serve` in a subprocess on a free loopback port, and keys made with the CLI."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from click.testing import CliRunner

from api.cli import cli

SIGMAX = Path(sys.executable).parent / "sigmax"
TOKEN = re.compile(r"\bsgx_[0-9a-f]{12}_[A-Za-z0-9_-]+")
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def create_key(home: Path, scope: str, label: str | None = None) -> str:
    """`sigmax keys create` on the home's database; returns the printed token."""
    args = ["keys", "create", "--scope", scope, *(["--label", label] if label else [])]
    result = CliRunner().invoke(cli, args, env={"SIGMAX_HOME": str(home)})
    assert result.exit_code == 0, result.output
    match = TOKEN.search(result.output)
    assert match, result.output
    return match.group(0)


@dataclass
class Server:
    process: subprocess.Popen[str]
    base_url: str
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)

    def stop_cleanly(self, timeout: float = 60.0) -> None:
        """SIGTERM, as a process manager stops it; the shutdown must complete. (uvicorn
        re-raises the signal once shut down, so the exit status is "terminated by SIGTERM",
        which process managers count as a clean stop.)"""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        returncode = self.process.wait(timeout)
        time.sleep(0.2)  # let the reader collect the last words
        assert returncode == -signal.SIGTERM, self.output
        assert "service stopped" in self.output, self.output
        assert "Application shutdown complete" in self.output, self.output


@contextmanager
def running_server(home: Path, *args: str, **env: str) -> Iterator[Server]:
    """Start `sigmax serve --port <free> ARGS` with SIGMAX_HOME=home; wait until /ping answers."""
    port = free_port()
    process = subprocess.Popen(
        [str(SIGMAX), "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SIGMAX_HOME": str(home), **env},
    )
    server = Server(process, f"http://127.0.0.1:{port}/api/v1")
    assert process.stdout is not None
    reader = threading.Thread(
        target=lambda: server.lines.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        _wait_until_up(server)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        reader.join(5)


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            time.sleep(0.2)  # let the reader collect the last words
            raise AssertionError(f"sigmax serve exited early:\n{server.output}")
        try:
            if httpx.get(f"{server.base_url}/ping", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(
        f"sigmax serve did not answer in {START_TIMEOUT_SECONDS} s:\n{server.output}"
    )
