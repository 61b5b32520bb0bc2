"""A py-spy profile of the API process during a load run, summarised by layer.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;… count``, each frame
``function (file:line)``, outermost first). Each sample is charged to the layer of its innermost
Python frame (self time: graphql-core, strawberry, SQLAlchemy, asyncpg, HTTP/ASGI, json, the
project's own packages…), and project functions also get inclusive time (every sample with the
function anywhere on its stack), which says which of our code paths the time flows through.
py-spy is optional: install it into the virtualenv (``.venv/bin/pip install py-spy``); it is not a
project dependency.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
PROJECT_PACKAGES = ("api", "schema", "db", "analytics")
LAYERS: tuple[tuple[str, str], ...] = (
    ("/graphql/", "graphql-core"),
    ("/strawberry/", "strawberry"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/asyncpg/", "asyncpg"),
    ("/uvicorn/", "HTTP/ASGI (uvicorn, starlette)"),
    ("/starlette/", "HTTP/ASGI (uvicorn, starlette)"),
    ("/httptools/", "HTTP/ASGI (uvicorn, starlette)"),
    ("/cross_web/", "HTTP/ASGI (uvicorn, starlette)"),
    ("/json/", "json"),
    ("/pydantic", "pydantic"),
    ("/joserfc/", "auth (joserfc)"),
    ("/cryptography/", "auth (joserfc)"),
    ("/asyncio/", "event loop (asyncio/uvloop, incl. native I/O)"),
    ("/uvloop/", "event loop (asyncio/uvloop, incl. native I/O)"),
    ("/prometheus_client/", "metrics"),
    ("/logging/", "logging"),
)


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def _rooted(path: str) -> str:
    """A frame's file with a leading slash: py-spy prints paths relative to their ``sys.path``
    entry (``graphql/execution/executor.py``, ``db/ingest.py``) or absolute."""
    return "/" + path.lstrip("/")


def _project_package(path: str) -> str | None:
    """The project package (``api``, ``schema``, ``db``, ``analytics``) a file belongs to."""
    rooted = _rooted(path)
    if "site-packages" in rooted or any(needle in rooted for needle, _ in LAYERS):
        return None
    for package in PROJECT_PACKAGES:
        if rooted.startswith(f"/{package}/") or f"/main/{package}/" in rooted:
            return package
    return None


def layer_of(path: str) -> str:
    """The layer a source file belongs to."""
    rooted = _rooted(path)
    for needle, layer in LAYERS:
        if needle in rooted:
            return layer
    package = _project_package(path)
    return f"project: {package}/" if package else "other"


def _frames(stack: str) -> list[tuple[str, str, str]]:
    """(function, file, line) of each frame, outermost first."""
    frames = []
    for raw in stack.split(";"):
        match = FRAME.match(raw.strip())
        if match is None:
            frames.append((raw.strip(), "", ""))
        else:
            frames.append((match["function"], match["file"], match["line"] or ""))
    return frames


def _short(function: str, path: str) -> str:
    package = _project_package(path)
    rooted = _rooted(path)
    if package is not None:
        return f"{package}/{rooted.split(f'/{package}/', 1)[1]}:{function}"
    return f"{rooted.split('site-packages/')[-1].lstrip('/')}:{function}"


@dataclass
class Summary:
    """Samples per layer (self time) and per project function (inclusive)."""

    samples: int = 0
    layers: Counter[str] = field(default_factory=Counter)
    self_functions: Counter[str] = field(default_factory=Counter)
    project_inclusive: Counter[str] = field(default_factory=Counter)

    def text(self, title: str, top: int = 12) -> str:
        """A Markdown section: layers and the heaviest functions."""
        if not self.samples:
            return f"### {title}\n\nno samples (py-spy missing or the run was too short)\n"
        lines = [f"### {title}", "", f"{self.samples:,} samples of the API process.", ""]
        lines += ["| layer (self time) | share |", "|---|---:|"]
        for layer, count in self.layers.most_common():
            lines.append(f"| {layer} | {100 * count / self.samples:.1f} % |")
        lines += ["", "| project function (inclusive) | share |", "|---|---:|"]
        wrappers = 0.8 * self.samples  # the ASGI middleware chain wraps every sample: skip it
        shown = [
            (name, count)
            for name, count in self.project_inclusive.most_common()
            if not (name.startswith("api/") and count >= wrappers)
        ]
        for name, count in shown[:top]:
            lines.append(f"| `{name}` | {100 * count / self.samples:.1f} % |")
        lines += ["", "| function (self time) | share |", "|---|---:|"]
        for name, count in self.self_functions.most_common(top):
            lines.append(f"| `{name}` | {100 * count / self.samples:.1f} % |")
        return "\n".join(lines) + "\n"


def summarise(raw: str) -> Summary:
    """Summarise py-spy's raw (collapsed stacks) output."""
    summary = Summary()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        summary.samples += count
        function, path, line = frames[-1]
        summary.layers[layer_of(path)] += count
        where = _short(function, path)
        if _project_package(path) is not None and line:
            where += f" (line {line})"  # comprehensions and lambdas need the line
        summary.self_functions[where] += count
        seen: set[str] = set()
        for function, path, _ in frames:
            if _project_package(path) is not None:
                name = _short(function, path)
                if name not in seen:
                    seen.add(name)
                    summary.project_inclusive[name] += count
    return summary


class Recording:
    """``py-spy record`` attached to a pid until :meth:`stop` (SIGINT makes it write). It pauses
    the process for each sample (consistent stacks); the profiled runs are not the measured ones.
    """

    def __init__(self, executable: str, pid: int, output: Path, rate: int = 200) -> None:
        self.output = output
        output.parent.mkdir(parents=True, exist_ok=True)
        command = [executable, "record", "--pid", str(pid), "--rate", str(rate), "--subprocesses"]
        command += ["--format", "raw", "--output", str(output)]
        self.process = subprocess.Popen(  # noqa: S603 - our own py-spy, our own server's pid
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def stop(self) -> str:
        """Stop recording; the raw stacks ('' when py-spy could not attach)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = await asyncio.to_thread(self.process.communicate, None, 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = await asyncio.to_thread(self.process.communicate)
        if not self.output.exists():
            sys.stderr.write(stderr.decode(errors="replace")[-2000:])
            return ""
        return self.output.read_text(errors="replace")


def main() -> None:
    """``python -m bench.profile RAW_FILE [TITLE]``: summarise a saved py-spy recording."""
    path = Path(sys.argv[1])
    title = sys.argv[2] if len(sys.argv) > 2 else path.name
    sys.stdout.write(summarise(path.read_text(errors="replace")).text(title))


if __name__ == "__main__":
    main()
