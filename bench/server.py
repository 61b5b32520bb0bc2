"""A real CollabX server for the benchmark: ``collabx serve`` in its own process, production
settings (``COLLABX_DEBUG=0``, no demo), uvicorn with uvloop/httptools when installed (uvicorn's
``auto``), on 127.0.0.1 and a free port; plus the /proc readings of its memory and CPU.

Output goes to a log file: a pipe nobody reads would fill up and stall the server. Only this
process is ever stopped, by its pid.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def proc_status_kib(pid: int, field: str) -> int | None:
    """A ``/proc/<pid>/status`` memory field (VmRSS, VmHWM) in KiB, None when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (``clear_refs`` 5, Linux ≥ 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's workers under ``COLLABX_WORKERS`` > 1)."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as children:
                    found += [int(child) for child in children.read().split()]
            except (OSError, ValueError):
                continue
    return found


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Server:
    """``collabx serve`` against ``database_url``; an async context manager."""

    def __init__(
        self, database_url: str, log_path: Path, *, extra_env: dict[str, str] | None = None
    ) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.host = "127.0.0.1"
        self.port = free_port()
        self.extra_env = dict(extra_env or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def environment(self) -> dict[str, str]:
        """The server's environment: ours without any COLLABX_* variable, plus its settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABX_")}
        env.update(
            COLLABX_DATABASE_URL=self.database_url,
            COLLABX_HOST=self.host,
            COLLABX_PORT=str(self.port),
            COLLABX_DEBUG="0",
            COLLABX_DEMO="0",
        )
        env.update(self.extra_env)
        return env

    async def start(self, wait_seconds: float = 60.0) -> None:
        """Start the process and wait until ``/readyz`` answers 200."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [sys.executable, "-m", "api", "serve"],
                env=self.environment(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + wait_seconds
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited early:\n{self.log_tail()}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        await self.stop()
        raise RuntimeError(
            f"the server did not get ready in {wait_seconds:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; only our own process."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 15)

    async def token(self, client_id: str, secret: str) -> str:
        """An access token by the client-credentials grant (HTTP Basic), as a client gets one."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30.0) as client:
            response = await client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
            )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def pids(self) -> list[int]:
        """The server's processes: ``collabx serve`` and, with several workers, its workers."""
        return process_tree(self.pid)

    def cpu_seconds(self) -> float:
        """CPU time so far of every process of the server (workers included)."""
        return sum(cpu_seconds(pid) or 0.0 for pid in self.pids())

    def _kib(self, field: str) -> float | None:
        found = [proc_status_kib(pid, field) for pid in self.pids()]
        known = [kib for kib in found if kib is not None]
        return sum(known) / 1024 if known else None

    def rss_mib(self) -> float | None:
        """The current resident set size in MiB (summed over the workers, if any)."""
        return self._kib("VmRSS")

    def peak_rss_mib(self) -> float | None:
        """The peak resident set size (VmHWM) in MiB (each worker's peak, summed)."""
        return self._kib("VmHWM")

    def reset_peak_rss(self) -> bool:
        """Reset the peak of every process of the server."""
        return all([reset_peak_rss(pid) for pid in self.pids()])

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
