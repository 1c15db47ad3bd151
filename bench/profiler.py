"""``--profile``: py-spy on the gateway's uvicorn process during a workload.

The workload runs twice with py-spy attached (``--native``, so the garbage
collector and C extensions show): once for a flamegraph (SVG), once for the
raw collapsed stacks, which :func:`summarize` reduces to Markdown: the share
of working samples by area (the gateway's packages, each library, the garbage
collector, SQLite) and the busiest functions. The profiled passes run after
the measured ones, so no printed figure comes from a profiled process.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import BENCH, table

__all__ = ["Profiler", "summarize"]

RATE_HZ = 200


def py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: run bench/setup")
    return found


@dataclass
class Profiler:
    directory: Path
    written: list[tuple[str, Path, Path]] = field(default_factory=list)

    async def profile(self, pid: int, name: str, workload: Callable[[], Awaitable[object]]) -> None:
        """Run ``workload`` twice under py-spy: once for ``<name>.svg`` (a flamegraph),
        once for ``<name>.txt`` (collapsed stacks). One sampler at a time: with
        ``--native`` py-spy pauses the process for each sample, which two
        samplers cannot both do."""
        self.directory.mkdir(parents=True, exist_ok=True)
        svg, raw = self.directory / f"{name}.svg", self.directory / f"{name}.txt"
        for fmt, path in (("flamegraph", svg), ("raw", raw)):
            async with _sampling(pid, fmt, path):
                await workload()
        self.written.append((name, svg, raw))


@contextlib.asynccontextmanager
async def _sampling(pid: int, fmt: str, path: Path) -> AsyncIterator[None]:
    sampler = await asyncio.create_subprocess_exec(
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(RATE_HZ),
        "--native",  # the garbage collector and C extensions show
        "--full-filenames",
        "--format",
        fmt,
        "--output",
        str(path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.sleep(0.5)  # attached before the workload starts
        if sampler.returncode is not None:
            raise RuntimeError("py-spy exited at once (is ptrace allowed here?)")
        yield
    finally:
        if sampler.returncode is None:
            sampler.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        try:
            _, err = await asyncio.wait_for(sampler.communicate(), 60)
        except TimeoutError:
            sampler.kill()
            await sampler.wait()
            err = b"py-spy did not stop within 60 s"
    if not await asyncio.to_thread(path.exists):
        raise RuntimeError(f"py-spy wrote no {path.name}: {err.decode(errors='replace')[-500:]}")


# Where a Python frame's file lies, by the most specific mark.
_STDLIB_AREAS = (
    ("asyncio", "/asyncio/"),
    ("sqlite3 (stdlib)", "/sqlite3/"),
    ("json (stdlib)", "/json/"),
    ("logging (stdlib)", "/logging/"),
    ("copy (stdlib)", "/copy.py"),
    ("threading (stdlib)", "/threading.py"),
    ("concurrent (stdlib)", "/concurrent/"),
)
_SITE = re.compile(r"site-packages/([A-Za-z0-9_]+)")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# A sample whose innermost frames are one of these is a thread waiting (for
# a queue, a lock, the network), not working: counted apart.
_WAITING = (
    "pthread_cond_wait",
    "pthread_cond_timedwait",
    "PyThread_acquire_lock_timed",
    "epoll_wait",
    "epoll_pwait",
    "sem_wait",
)
GC, SQLITE, WAITING = "garbage collector (gc_collect_main)", "SQLite (library and sqlite3 module)", "waiting"
# Native code with an area of its own (else native time counts towards the Python frame that called it).
_NATIVE_AREAS = (
    ("uvloop + libuv (native event loop)", ("/uvloop/", "libuv")),
    ("httptools (native HTTP parser)", ("/httptools/", "llhttp")),
    (SQLITE, ("libsqlite3", "/_sqlite/")),
)


def _area(file: str) -> str:
    site = _SITE.search(file)
    if site:
        return site.group(1)
    for area, mark in _STDLIB_AREAS:
        if mark in file:
            return area
    root = str(BENCH.parent) + "/"
    if file.startswith(root) and "/.venv/" not in file:
        return file.removeprefix(root).split("/", 1)[0] + "/"
    return "other Python (stdlib, uvicorn's script)"


def _short(file: str) -> str:
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1]
    root = str(BENCH.parent) + "/"
    if file.startswith(root):
        return file.removeprefix(root)
    return file.rsplit("/lib/python3", 1)[-1].split("/", 1)[-1] if "/lib/python3" in file else file


def _native_area(func: str, file: str) -> str | None:
    if any(w in func for w in _WAITING):
        return WAITING
    if "gc_collect" in func:
        return GC
    for area, marks in _NATIVE_AREAS:
        if any(m in file for m in marks):
            return area
    return None


def _classify(stack: str) -> tuple[str, str, set[str], set[str]] | None:
    """(self area, self function, areas on the stack, functions on the stack); None when nothing is known.

    The innermost frame that says something decides where a sample's time
    goes: a wait, the garbage collector, native code with an area of its own
    (uvloop, httptools, SQLite), or else the innermost Python frame.
    """
    frames = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame)
        if match is not None:
            frames.append((match.group("func"), match.group("file")))
    areas: set[str] = set()
    funcs: set[str] = set()
    for func, file in frames:
        if file.endswith(".py"):
            areas.add(_area(file))
            funcs.add(f"{func} ({_short(file)})")
    for func, file in reversed(frames):
        native = None if file.endswith(".py") else _native_area(func, file)
        if native is not None:
            return native, native, areas | {native}, funcs | {native}
        if file.endswith(".py"):
            return _area(file), f"{func} ({_short(file)})", areas, funcs
    return None


def summarize(raw: Path, *, top: int = 20) -> str:
    """Markdown: the working samples by area and the functions with most samples of their own."""
    working = waiting = 0
    self_area: Counter[str] = Counter()
    inclusive_area: Counter[str] = Counter()
    self_func: Counter[str] = Counter()
    inclusive_func: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        classified = _classify(stack)
        if classified is None:
            continue
        count = int(count_text)
        area, func, areas, funcs = classified
        if area == WAITING:
            waiting += count
            continue
        working += count
        self_area[area] += count
        self_func[func] += count
        for name in areas:
            inclusive_area[name] += count
        for name in funcs:
            inclusive_func[name] += count
    if working == 0:
        return f"(no working samples in {raw.name})"

    def pct(n: int) -> str:
        return f"{100 * n / working:.1f}"

    areas_table = table(
        ["area", "self %", "inclusive %"],
        [[a, pct(n), pct(inclusive_area[a])] for a, n in self_area.most_common()],
    )
    functions_table = table(
        ["function", "self %", "inclusive %"],
        [[f, pct(n), pct(inclusive_func[f])] for f, n in self_func.most_common(top)],
    )
    return (
        f"{working} working samples at {RATE_HZ} Hz (and {waiting} of threads waiting, left out). "
        "Self: where the innermost frame that says something lies: a wait (left out), the garbage "
        "collector, native code with an area of its own (uvloop, httptools, SQLite), else the innermost "
        "Python frame (other native code counts towards its caller). Every thread counts (aiosqlite's too).\n\n"
        f"{areas_table}\n\n{functions_table}"
    )
