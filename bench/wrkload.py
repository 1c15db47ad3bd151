"""HTTP load with ``wrk`` (Debian's package, installed by ``bench/setup``).

wrk keeps ``connections`` keep-alive connections busy from one thread and
measures each request from send to full response. The POST body and headers
come from a generated Lua script, whose ``done`` hook prints the summary as
one JSON line. A ``response`` hook checks every answer: HTTP 200 and exactly
the expected bytes (``must_equal``, for reads), or HTTP 200 with a given
text and no ``"errors"`` (``must_contain``, for purchases). The hook costs
wrk a Lua call per answer; measured against the floor at ~17,000 req/s it
changed neither the rate nor wrk's CPU share beyond run-to-run noise.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WrkResult", "run_wrk", "write_script", "wrk_version"]

_MARK = "WRK_RESULT "
_FAILURE_MARK = "WRK_FIRST_FAILURE "

_SCRIPT = """
wrk.method = "POST"
wrk.path = "/graphql"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"

local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end

checked, failures, first_failure = 0, 0, ""
{response_hook}

function done(summary, latency, requests)
  local checked, failures, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    checked = checked + thread:get("checked")
    failures = failures + thread:get("failures")
    if first == "" then first = thread:get("first_failure") end
  end
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}},' ..
    '"latency_us":{{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}},"checked":%d,"failures":%d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    checked, failures))
  if first ~= "" then
    io.write("{failure_mark}" .. string.gsub(first, "\\n", " ") .. "\\n")
  end
end
"""

_CONTAINS_HOOK = """
function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or not string.find(body, [==[{needle}]==], 1, true) or string.find(body, '"errors"', 1, true) then
    failures = failures + 1
    if first_failure == "" then first_failure = status .. " " .. string.sub(body, 1, 300) end
  end
end
"""

_EQUALS_HOOK = """
local expected = [==[{expected}]==]
function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or body ~= expected then
    failures = failures + 1
    if first_failure == "" then first_failure = status .. " " .. string.sub(body, 1, 300) end
  end
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    bytes: int
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    checked: int
    failures: int
    first_failure: str
    client_cpu_s: float  # wrk's own CPU time (user + system)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def error_kinds(self) -> str:
        """``timeout 1, read 2``: the kinds of error wrk counted, or ''."""
        return ", ".join(f"{kind} {count}" for kind, count in self.errors.items() if count)

    @property
    def client_cpu_share(self) -> float:
        """wrk's CPU time / wall time: near 1.0 would mean wrk itself limits the rate."""
        return self.client_cpu_s / self.seconds if self.seconds else 0.0


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: run bench/setup")
    return found


async def wrk_version() -> str:
    process = await asyncio.create_subprocess_exec(
        wrk_binary(), "-v", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 10)
    return out.decode(errors="replace").splitlines()[0].split(" Copyright")[0] if out else "?"


def write_script(
    path: Path, *, body: bytes, token: str, must_contain: str | None = None, must_equal: bytes | None = None
) -> Path:
    """The Lua script for wrk: the request, the answer check (if any), the summary as JSON."""
    texts = [body.decode(), must_contain or "", (must_equal or b"").decode()]
    if any("]==]" in t for t in texts):
        raise ValueError("the text cannot be quoted as a Lua long string")
    hook = ""
    if must_equal is not None:
        hook = _EQUALS_HOOK.format(expected=must_equal.decode())
    elif must_contain is not None:
        hook = _CONTAINS_HOOK.format(needle=must_contain)
    path.write_text(
        _SCRIPT.format(body=texts[0], token=token, response_hook=hook, mark=_MARK, failure_mark=_FAILURE_MARK)
    )
    return path


async def run_wrk(url: str, script: Path, *, connections: int, seconds: int, timeout_s: float = 10) -> WrkResult:
    """``wrk -t1 -c<connections> -d<seconds>s -s <script> <url>/graphql``, bounded in time."""
    argv = [
        wrk_binary(),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={int(timeout_s)}s",
        "-s",
        str(script),
        url + "/graphql",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), seconds + timeout_s + 15)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"wrk did not finish within {seconds + timeout_s + 15}s") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = out.decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith(_MARK)), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{text[-2000:]}")
    data = json.loads(line.removeprefix(_MARK))
    failure = next((ln.removeprefix(_FAILURE_MARK) for ln in text.splitlines() if ln.startswith(_FAILURE_MARK)), "")
    latency = data["latency_us"]
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        bytes=data["bytes"],
        errors=data["errors"],
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        checked=data["checked"],
        failures=data["failures"],
        first_failure=failure,
        client_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )
