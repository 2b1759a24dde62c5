"""Points/s, keepalive latency and RSS of UDF processes, with Kapacitor's own Python agent as baseline.

    /work/venv/bin/python benchmarks/udf_harness.py [--points 100000] [--rounds 3] [--pool 2048]
    /work/venv/bin/python benchmarks/udf_harness.py --points 1000000 --only errloop_mirror,errloop_classify

Plays Kapacitor's side of the UDF protocol (reference/tick-facts.md §1) against each UDF
process over pipes: info, init, then ``--points`` errloop_events points written as fast as
the UDF takes them, a keepalive request every 100 ms in the same stream (its reply latency
is recorded: from just before the write that carries it to the reply being read, so a
keepalive stuck behind data in a full pipe counts), and every emitted point read back.
The UDF's RSS is read from /proc/PID/status (VmRSS, peak VmHWM) while it runs, its CPU
(user + system, /proc/PID/stat) from the first point written to the last one read back:
CPU per point is reported beside the rates, as it depends less on what else the machine runs.

UDFs, in the same run:

- ``errloop_mirror``: ``python -m errloop.udf errloop_mirror``
- ``errloop_classify``: ``python -m errloop.udf errloop_classify`` with the default rules
- ``official_mirror``: Kapacitor's own Python agent (``udf/agent/py``) with its
  ``udf/agent/examples/mirror/mirror.py`` handler, from the Kapacitor module source the
  stack build downloads (``kapacitor_source()``), run in a venv created here in the cache
  dir with the protobuf version the agent's setup.py pins. Nothing of it is copied.

The points are real errloop_events: zap JSON lines of Go errors (panics with stacks,
wrapped chains, gRPC, SQL, HTTP) passed through errloop's own errlog normaliser, then
encoded as Kapacitor would send them (string fields with newlines as control pictures).
A pool of distinct points is cycled. A benchmark measures; nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from errloop.deploy.stack import versions
from errloop.rules import contract
from errloop.telegraf.errlog.normalise import parse_lines
from errloop.udf.agent import decode_uvarint, frame, udf_pb2

KEEPALIVE_EVERY_S = 0.1
POOL = 2048  # distinct points, cycled
CHUNK = 16  # points per write() call
RSS_EVERY_S = 0.25
_KEY_POINT = b"\x8a\x01"  # Response.point (17, length-delimited)
_KEY_KEEPALIVE = 0x1A  # Response.keepalive (3, length-delimited)
_PICTURES = str.maketrans(contract.CONTROL_PICTURES)

# ------------------------------------------------------------------------------- the points

ERRORS: tuple[tuple[str, str, dict[str, object]], ...] = (
    # (msg, error text, extra zap fields)
    (
        "create user failed",
        "Key: 'CreateUserRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag",
        {"status": 400},
    ),
    ("handler panic", "runtime error: invalid memory address or nil pointer dereference", {"status": 500}),
    ("handler panic", "runtime error: index out of range [5] with length 3", {"status": 500}),
    ("worker crashed", "fatal error: concurrent map writes", {}),
    ("worker crashed", "panic: assignment to entry in nil map", {}),
    ("publish failed", "panic: send on closed channel", {}),
    (
        "get user failed",
        "get user {id}: rpc error: code = Unavailable desc = connection error: desc = "
        '"transport: Error while dialing: dial tcp 10.0.3.7:50051: connect: connection refused"',
        {"grpc_code": "Unavailable"},
    ),
    (
        "call inventory failed",
        "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
        {"grpc_code": "DeadlineExceeded"},
    ),
    ("find user failed", "find user {id}: sql: no rows in result set", {"status": 404}),
    (
        "update stock failed",
        "update stock {id}: Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction",
        {},
    ),
    (
        "insert user failed",
        'insert user: ERROR: duplicate key value violates unique constraint "users_email_key" (SQLSTATE 23505)',
        {"status": 409},
    ),
    ("report query failed", "run report: ERROR: canceling statement due to statement timeout (SQLSTATE 57014)", {}),
    ("create order failed", "insert order {id}: dial tcp 10.0.0.7:5432: connect: connection refused", {"status": 500}),
    (
        "charge failed",
        'Post "https://billing.internal/v1/charge": tls: failed to verify certificate: '
        "x509: certificate signed by unknown authority",
        {"status": 502},
    ),
    ("accept failed", "accept tcp [::]:8080: accept4: too many open files", {}),
    (
        "decode body failed",
        "decode body: json: cannot unmarshal string into Go struct field User.age of type int",
        {"status": 400},
    ),
    ("cache read failed", "get session: read tcp 10.0.0.12:51234->10.0.0.7:6379: i/o timeout", {}),
    ("list items failed", "list items: context deadline exceeded", {"status": 504}),
    ("stream closed", "read frame: unexpected EOF", {}),
    (
        "fetch profile failed",
        'Get "http://profile:8080/v1/users/42": dial tcp: lookup profile on 10.96.0.10:53: no such host',
        {"status": 502},
    ),
    ("checkout failed", "checkout {id}: payment declined: insufficient funds", {"status": 402}),
    ("sync failed", "sync shard 7: something unexpected happened in the reconciler", {}),
)
SERVICES = ("user-api", "orders", "billing", "inventory", "gateway", "search")
APP_FRAMES = (
    ("github.com/acme/{svc}/internal/api.(*Handler).Create", "/src/{svc}/internal/api/handler.go:{line}"),
    ("github.com/acme/{svc}/internal/store.(*PG).Insert", "/src/{svc}/internal/store/pg.go:{line}"),
    ("github.com/acme/{svc}/internal/worker.(*Pool).run", "/src/{svc}/internal/worker/pool.go:{line}"),
)
LIB_FRAMES = (
    ("net/http.HandlerFunc.ServeHTTP", "/usr/local/go/src/net/http/server.go:2220"),
    ("net/http.(*ServeMux).ServeHTTP", "/usr/local/go/src/net/http/server.go:2747"),
    ("net/http.serverHandler.ServeHTTP", "/usr/local/go/src/net/http/server.go:3210"),
    ("net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go:2092"),
)


def zap_line(i: int, rng: random.Random) -> str:
    """One zap production JSON line of a Go service logging an error."""
    msg, err, extra = ERRORS[i % len(ERRORS)]
    err = err.replace("{id}", str(rng.randrange(1, 500)))  # ids in messages: not every text repeats
    svc = SERVICES[(i // len(ERRORS)) % len(SERVICES)]
    fn, file = APP_FRAMES[i % len(APP_FRAMES)]
    line_no = 40 + (i % 7) * 13
    frames = [(fn.format(svc=svc), file.format(svc=svc, line=line_no)), *LIB_FRAMES]
    rec: dict[str, object] = {
        "level": "error",
        "ts": 1732700000 + i * 0.001,
        "logger": "http",
        "caller": f"internal/api/handler.go:{line_no}",
        "msg": msg,
        "service": svc,
        "method": "POST",
        "path": f"/api/v1/orders/{rng.randrange(10_000)}",
        "latency": round(rng.uniform(0.001, 2.0), 6),
        "trace_id": f"{rng.getrandbits(128):032x}",
        "span_id": f"{rng.getrandbits(64):016x}",
        "error": err,
        "stacktrace": "\n".join(f"{f}\n\t{loc}" for f, loc in frames),
        **extra,
    }
    return json.dumps(rec)


def make_events(count: int, seed: int = 5) -> list[contract.Event]:
    """``count`` events from errloop's own errlog normaliser."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    lines = [zap_line(i, rng) + "\n" for i in range(count)]
    events = []
    for i, outcome in enumerate(parse_lines(lines, source="/var/log/app/app.log", env="prod", host="")):
        if outcome.event is not None:
            ev = dict(outcome.event)
            ev["host"] = f"node-{i % 5}"
            events.append(ev)
    return events


def to_point(event: contract.Event, time_ns: int) -> udf_pb2.Point:
    """An errloop_events point as Kapacitor hands it to a stream UDF."""
    p = udf_pb2.Point(name=contract.EVENTS, database=contract.DATABASE, retentionPolicy=contract.RETENTION_POLICY)
    p.time = time_ns
    tags, fields = contract.split(event, contract.EVENT_TAGS)
    p.tags.update(tags)
    for name, value in fields.items():
        if isinstance(value, bool):
            p.fieldsBool[name] = value
        elif isinstance(value, int):
            p.fieldsInt[name] = value
        elif isinstance(value, float):
            p.fieldsDouble[name] = value
        else:
            p.fieldsString[name] = value.translate(_PICTURES)
    return p


def point_chunks(pool: int = POOL, chunk: int = CHUNK) -> tuple[list[bytes], int]:
    """Framed Request(point) messages joined ``chunk`` at a time; and the mean point frame size."""
    events = make_events(pool)
    t0 = 1_732_700_000_000_000_000
    frames = [
        frame(udf_pb2.Request(point=to_point(ev, t0 + i * 1_000_000)).SerializeToString())
        for i, ev in enumerate(events)
    ]
    chunks = [b"".join(frames[i : i + chunk]) for i in range(0, len(frames) - chunk + 1, chunk)]
    return chunks, sum(map(len, frames)) // len(frames)


# ------------------------------------------------------------------------------- the UDFs


@dataclass(frozen=True)
class Target:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None


def errloop_targets() -> list[Target]:
    return [
        Target("errloop_mirror", [sys.executable, "-m", "errloop.udf", "errloop_mirror"]),
        Target("errloop_classify", [sys.executable, "-m", "errloop.udf", "errloop_classify"]),
    ]


def bench_cache() -> Path:
    """``<errloop cache>/udf-bench``: the official agent's venv lives here."""
    return versions.cache_dir().parent / "udf-bench"


OFFICIAL_CODE = (
    "import sys; sys.path[:0] = sys.argv[1:3]; import mirror; from kapacitor.udf.agent import Agent; "
    "a = Agent(); a.handler = mirror.MirrorHandler(a); a.start(); a.wait()"
)


def official_target(say: Callable[[str], None]) -> tuple[Target, str]:
    """Kapacitor's agent + mirror example in a venv with the pinned protobuf; and that pin."""
    from errloop.deploy.stack.build import kapacitor_source

    src = kapacitor_source()
    agent_py = src / "udf" / "agent" / "py"
    example = src / "udf" / "agent" / "examples" / "mirror"
    m = re.search(r"protobuf==([0-9][0-9.]*)", (agent_py / "setup.py").read_text())
    if m is None:
        raise SystemExit(f"no protobuf pin found in {agent_py / 'setup.py'}")
    pin = m.group(1)
    env_dir = bench_cache() / f"kapacitor-agent-protobuf-{pin}-py{sys.version_info.major}{sys.version_info.minor}"
    python = env_dir / "bin" / "python"
    marker = env_dir / ".ready"
    if not marker.exists():
        say(f"creating {env_dir} with protobuf=={pin} (Kapacitor's agent pin) ...")
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"protobuf=={pin}"],
            check=True,
        )
        marker.write_text(pin)
    argv = [str(python), "-c", OFFICIAL_CODE, str(agent_py), str(example)]
    return Target("official_mirror", argv, {"PYTHONPATH": "", "PATH": os.environ.get("PATH", "")}), pin


# ------------------------------------------------------------------------------- one run


@dataclass
class Result:
    name: str
    points: int
    emitted: int = 0
    seconds: float = 0.0
    keepalive_ms: list[float] = field(default_factory=list)
    keepalives_unanswered: int = 0
    rss_kb: list[tuple[int, int]] = field(default_factory=list)  # (points emitted, VmRSS kB)
    hwm_kb: int = 0
    exit_code: int | None = None
    errors: list[str] = field(default_factory=list)
    first_name: str = ""
    notes: list[str] = field(default_factory=list)  # what the UDF logged about itself at the end
    cpu_s: float = 0.0  # the UDF's user + system CPU from the first point written to the last one back

    @property
    def cpu_us_per_point(self) -> float:
        return self.cpu_s * 1e6 / self.emitted if self.emitted else 0.0

    @property
    def rate(self) -> float:
        return self.emitted / self.seconds if self.seconds else 0.0


def _status_kb(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (/proc/PID/stat utime, stime)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Session:
    """Kapacitor's side of one conversation with a UDF process."""

    def __init__(self, target: Target, stderr: IO[bytes]) -> None:
        env = {**os.environ, **(target.env or {})}
        self.proc = subprocess.Popen(target.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.emitted = 0
        self.last_point_at = 0.0
        self.first_point: bytes | None = None
        self.control: queue.Queue[udf_pb2.Response | None] = queue.Queue()
        self.pending: dict[int, float] = {}  # keepalive time -> perf_counter when written
        self.keepalive_ms: list[float] = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        buf = b""
        rfd = self.rfd
        perf = time.perf_counter
        emitted = 0
        try:
            while True:
                data = os.read(rfd, 1 << 20)
                if not data:
                    break
                buf = buf + data if buf else data
                pos, end = 0, len(buf)
                while pos < end:
                    b = buf[pos]
                    if b < 0x80:
                        size, start = b, pos + 1
                    else:  # points are >= 128 bytes: a longer prefix
                        decoded = decode_uvarint(buf, pos)
                        if decoded is None:
                            break
                        size, start = decoded
                    stop = start + size
                    if stop > end:
                        break
                    if buf[start : start + 2] == _KEY_POINT:
                        emitted += 1
                        if self.first_point is None:
                            self.first_point = buf[start:stop]
                    else:
                        resp = udf_pb2.Response()
                        resp.ParseFromString(buf[start:stop])
                        if buf[start] == _KEY_KEEPALIVE:
                            with self.lock:
                                sent = self.pending.pop(resp.keepalive.time, None)
                            if sent is not None:
                                self.keepalive_ms.append((perf() - sent) * 1000)
                        else:
                            self.control.put(resp)
                    pos = stop
                buf = buf[pos:]
                if emitted != self.emitted:
                    self.emitted = emitted
                    self.last_point_at = perf()
        finally:
            self.emitted = emitted
            self.control.put(None)

    def request(self, req: udf_pb2.Request, timeout: float = 30.0) -> udf_pb2.Response:
        _write_all(self.wfd, frame(req.SerializeToString()))
        resp = self.control.get(timeout=timeout)
        if resp is None:
            raise RuntimeError("the UDF closed its output")
        return resp


def run_one(target: Target, chunks: list[bytes], n: int, workdir: Path) -> Result:
    res = Result(target.name, n)
    err_path = workdir / f"{target.name}.stderr"
    with open(err_path, "wb") as stderr:
        s = Session(target, stderr)
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(RSS_EVERY_S):
                rss, hwm = _status_kb(s.proc.pid)
                if rss:
                    res.rss_kb.append((s.emitted, rss))
                    res.hwm_kb = max(res.hwm_kb, hwm)

        try:
            info = s.request(udf_pb2.Request(info=udf_pb2.InfoRequest()))
            if info.WhichOneof("message") != "info":
                raise RuntimeError(f"info: {info}")
            init = s.request(udf_pb2.Request(init=udf_pb2.InitRequest(taskID="bench", nodeID="udf1")))
            if not init.init.success:
                raise RuntimeError(f"init failed: {init}")
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            per_chunk = CHUNK
            n_chunks = (n + per_chunk - 1) // per_chunk
            res.points = n = n_chunks * per_chunk
            perf = time.perf_counter
            cpu0 = cpu_seconds(s.proc.pid)
            t0 = perf()
            next_ka = t0 + KEEPALIVE_EVERY_S
            wfd, n_pool = s.wfd, len(chunks)
            for i in range(n_chunks):
                data = chunks[i % n_pool]
                now = perf()
                if now >= next_ka:
                    t = time.time_ns()
                    data = frame(udf_pb2.Request(keepalive=udf_pb2.KeepaliveRequest(time=t)).SerializeToString()) + data
                    with s.lock:
                        s.pending[t] = now
                    next_ka = now + KEEPALIVE_EVERY_S
                _write_all(wfd, data)
            deadline = perf() + 120
            while s.emitted < n and s.reader.is_alive() and perf() < deadline:
                time.sleep(0.005)
            stop_sampling.set()
            sampler.join()
            rss, hwm = _status_kb(s.proc.pid)  # every point is back, the process still runs
            res.cpu_s = cpu_seconds(s.proc.pid) - cpu0
            if rss:
                res.rss_kb.append((s.emitted, rss))
                res.hwm_kb = max(res.hwm_kb, hwm)
            os.close(wfd)
            s.proc.stdin = None  # closed above
            s.reader.join(timeout=600)
            res.seconds = s.last_point_at - t0
        except (OSError, RuntimeError, queue.Empty) as exc:
            res.errors.append(f"{type(exc).__name__}: {exc}")
            s.proc.kill()
        finally:
            stop_sampling.set()
            res.exit_code = s.proc.wait(timeout=60)
            res.emitted = s.emitted
            res.keepalive_ms = s.keepalive_ms
            res.keepalives_unanswered = len(s.pending)
            while True:
                try:
                    resp = s.control.get_nowait()
                except queue.Empty:
                    break
                if resp is not None and resp.WhichOneof("message") == "error":
                    res.errors.append(f"ErrorResponse: {resp.error.error}")
            if s.first_point is not None:
                out = udf_pb2.Response()
                out.ParseFromString(s.first_point)
                res.first_name = out.point.name
    log = err_path.read_text(errors="replace")
    res.notes += [m.group(0) for m in re.finditer(r"classification cache hits=\d+ misses=\d+", log)]
    if res.exit_code != 0 or res.emitted != res.points:
        tail = err_path.read_text(errors="replace").strip().splitlines()[-10:]
        res.errors.append("stderr tail:\n    " + "\n    ".join(tail))
    return res


# ------------------------------------------------------------------------------- report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def rss_trend(res: Result, marks: int = 10) -> list[tuple[int, int]]:
    """VmRSS (kB) when the emitted count first reached each tenth of the points."""
    out: list[tuple[int, int]] = []
    for k in range(1, marks + 1):
        goal = res.points * k // marks
        hit = next((s for s in res.rss_kb if s[0] >= goal), None)
        if hit is not None and (not out or hit != out[-1]):
            out.append(hit)
    return out


def describe(res: Result) -> str:
    ka = sorted(res.keepalive_ms)
    p50 = statistics.median(ka) if ka else float("nan")
    lines = [
        f"{res.name:17s} {res.rate:10,.0f} points/s   {res.emitted:,}/{res.points:,} points in {res.seconds:.2f}s   "
        f"keepalive p50 {p50:.1f} ms max {max(ka, default=float('nan')):.1f} ms "
        f"({len(ka)} answered, {res.keepalives_unanswered} unanswered)   peak RSS {res.hwm_kb / 1024:.1f} MiB   "
        f"CPU {res.cpu_us_per_point:.1f} us/point",
    ]
    trend = rss_trend(res)
    if trend:
        lines.append("    RSS MiB at points out: " + "  ".join(f"{p // 1000}k:{kb / 1024:.1f}" for p, kb in trend))
        half = [kb for p, kb in res.rss_kb if p >= res.points // 2]
        if len(half) >= 2:
            growth = (half[-1] - half[0]) / 1024
            lines.append(f"    RSS second half: {half[0] / 1024:.1f} -> {half[-1] / 1024:.1f} MiB ({growth:+.1f} MiB)")
    if res.first_name:
        lines.append(f"    first emitted point: measurement {res.first_name}")
    for note in res.notes:
        lines.append(f"    UDF log: {note}")
    for e in res.errors:
        lines.append(f"    ERROR {e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=100_000, help="points per UDF and round (default 100000)")
    ap.add_argument("--pool", type=int, default=POOL, help=f"distinct points, cycled (default {POOL})")
    ap.add_argument(
        "--rounds", type=int, default=3, help="run every UDF this many times (default 3); the median rate counts"
    )
    ap.add_argument(
        "--only", default="", help="comma-separated subset: errloop_mirror,errloop_classify,official_mirror"
    )
    args = ap.parse_args(argv)

    def say(text: str) -> None:
        print(text, flush=True)

    targets = errloop_targets()
    only = {x for x in args.only.split(",") if x}
    pin = "-"
    if not only or "official_mirror" in only:
        official, pin = official_target(say)
        targets.append(official)
    if only:
        targets = [t for t in targets if t.name in only]

    from google.protobuf import __version__ as pb_version
    from google.protobuf.internal import api_implementation

    say(f"command: {shlex.join([sys.executable, *sys.argv])}")
    say(
        f"machine: nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()} "
        f"errloop protobuf={pb_version} ({api_implementation.Type()}) official protobuf={pin}"
    )
    chunks, size = point_chunks(max(CHUNK, args.pool))
    say(f"points: {args.points:,} per UDF, {len(chunks) * CHUNK} distinct, mean {size} bytes framed")
    results: dict[str, list[Result]] = {t.name: [] for t in targets}
    with tempfile.TemporaryDirectory(prefix="errloop-udf-bench-") as tmp:
        for r in range(args.rounds):
            for target in targets:
                res = run_one(target, chunks, args.points, Path(tmp))
                results[target.name].append(res)
                say(("" if args.rounds == 1 else f"[round {r + 1}] ") + describe(res))
    rates = {name: statistics.median(r.rate for r in rs) for name, rs in results.items() if rs}
    base = rates.get("official_mirror")
    if base:
        for name in ("errloop_mirror", "errloop_classify"):
            if name in rates:
                # each round runs the UDFs back to back: its ratio is less exposed to load drifting
                per_round = [
                    a.rate / b.rate for a, b in zip(results[name], results["official_mirror"], strict=True) if b.rate
                ]
                say(
                    f"ratio {name} / official_mirror: {rates[name] / base:.2f}x "
                    f"(median rates {rates[name]:,.0f} / {base:,.0f} points/s; per round "
                    + ", ".join(f"{x:.2f}x" for x in per_round)
                    + ")"
                )
        # CPU per point: what the UDF costs, less exposed than a rate to what else runs on the machine
        cpu = {name: statistics.median(r.cpu_us_per_point for r in rs) for name, rs in results.items() if rs}
        for name in ("errloop_mirror", "errloop_classify"):
            if cpu.get(name):
                say(
                    f"CPU per point official_mirror / {name}: {cpu['official_mirror'] / cpu[name]:.2f}x "
                    f"(median {cpu['official_mirror']:.1f} / {cpu[name]:.1f} us)"
                )
    failed = any(r.errors for rs in results.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
