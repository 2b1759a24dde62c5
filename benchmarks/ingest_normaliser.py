"""Lines/s of errlog's normaliser against Drain3's template mining, on the same mixed Go log, one core.

    .venv/bin/python benchmarks/ingest_normaliser.py [--lines 50000] [--repeat 3] [--seed 1] [--profile]

The log is built from the real captured Go output of tests/telegraf/data/ (golog/: every
log format errlog parses, panics and fatal errors; *.jsonl: zap lines, info/debug lines
included): blocks drawn at random (panic dumps less often, ``--panic-weight``) with their
parameters varied — trace and span ids, UUIDs, user/order ids, IPs and ports, addresses,
goroutine ids, times, epochs, pids, durations, numbers in messages.

Timed on the same lines, one after the other in this process (``--repeat`` times, alternated,
the fastest run of each counts):

- errloop: ``errloop.telegraf.errlog.normalise.parse_lines`` (container unwrapping,
  multi-line grouping, every parser, wrap chain, stack, masking, fingerprint, event);
- Drain3 with the masking rules of its example configuration (examples/drain3.ini: ID, IP,
  SEQ, HEX, NUM; sim_th 0.4, depth 4, max_children 100, max_clusters 1024, extra delimiter
  ``_``; profiling off), one ``add_log_message`` per line;
- Drain3 with its default configuration (no masking, no cluster limit).

Groups: errloop's distinct fingerprints, Drain3's clusters (ids ever made). The labelled
measurement normalises each drawn block on its own (untimed): a label is (block, n-th event
of the block), so the same error with other parameters must keep its fingerprint ("split"
counts labels with more than one fingerprint; "merged" fingerprints shared by several labels).
A benchmark measures; nothing here asserts.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import random
import re
import shlex
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from errloop.telegraf.errlog.normalise import parse_lines

DATA = Path(__file__).resolve().parent.parent / "tests" / "telegraf" / "data"
PANIC_SUFFIXES = ("panic", "map", "map_all", "deadlock", "oom", "sigquit")

# examples/drain3.ini of logpai/Drain3 (the masking rules of its example configuration)
DRAIN3_EXAMPLE_MASKING = (
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
)


@dataclass(frozen=True)
class Block:
    """Lines a Go program wrote together (one log call, a panic dump), from one capture file."""

    name: str
    text: str  # with its final "\n"
    panic: bool


def load_blocks(data: Path = DATA) -> list[Block]:
    blocks = []
    for path in sorted((data / "golog").glob("*.log")):
        text = path.read_text()
        if text.strip():
            stem = path.name.removesuffix(".log")
            panic = "." not in stem  # <format>.<case>.log are log lines; the rest panics/fatal errors
            blocks.append(Block(stem, text if text.endswith("\n") else text + "\n", panic))
    for path in sorted(data.glob("*.jsonl")):
        for i, line in enumerate(path.read_text().splitlines()):
            if line.strip():
                blocks.append(Block(f"{path.stem}:{i + 1}", line + "\n", False))
    return blocks


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _time(rng: random.Random, m: re.Match[str]) -> str:
    frac = m.group(1) or ""
    frac = "." + "".join(rng.choice("0123456789") for _ in frac[1:]) if frac else ""
    return f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}{frac}"


def variations(rng: random.Random) -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
    """The parameters varied in each drawn block: pattern → a new value for each match."""
    rules: list[tuple[str, Callable[[re.Match[str]], str]]] = [
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            lambda m: str(uuid.UUID(int=rng.getrandbits(128))),
        ),
        (r"\b[0-9a-f]{32}\b", lambda m: _hex(rng, 32)),
        (r"\b[0-9a-f]{16}\b", lambda m: _hex(rng, 16)),
        (r"(?<![+\w])0x[0-9a-f]{5,}", lambda m: "0x" + _hex(rng, rng.choice((6, 8, 12)))),
        (r"goroutine \d+", lambda m: f"goroutine {rng.randrange(1, 100_000)}"),
        (r"\b(users?|orders?)([ /])\d+(?![\w-])", lambda m: f"{m.group(1)}{m.group(2)}{rng.randrange(1, 10**7)}"),
        (r'"order_id":\d+', lambda m: f'"order_id":{rng.randrange(1, 10**7)}'),
        (
            r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d+",
            lambda m: (
                f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}:{rng.randrange(1024, 65536)}"
            ),
        ),
        (r"\b\d\d:\d\d:\d\d(\.\d+)?", lambda m: _time(rng, m)),
        (r'"ts":\d+\.\d+', lambda m: f'"ts":{1_795_000_000 + rng.random() * 1_000_000:.7f}'),
        (r"(?m)^(E\d{4} \S+ +)\d+", lambda m: f"{m.group(1)}{rng.randrange(1, 4_000_000)}"),
        (r"balance -\d+", lambda m: f"balance -{rng.randrange(1, 100_000)}"),
        (
            r"allocate \d+-byte block \(\d+ in use\)",
            lambda m: f"allocate {rng.randrange(1, 1 << 30)}-byte block ({rng.randrange(1, 1 << 34)} in use)",
        ),
        (r'"(duration_ms|latency|timeout)":[\d.]+', lambda m: f'"{m.group(1)}":{rng.random() * 500:.3f}'),
    ]
    return [(re.compile(p), f) for p, f in rules]


def build_log(n_lines: int, seed: int, panic_weight: float) -> tuple[list[str], list[Block]]:
    """At least ``n_lines`` lines (each with its "\\n") and the varied blocks they were made of."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    blocks = load_blocks()
    weights = [panic_weight if b.panic else 1.0 for b in blocks]
    rules = variations(rng)
    lines: list[str] = []
    drawn: list[Block] = []
    while len(lines) < n_lines:
        block = rng.choices(blocks, weights)[0]
        text = block.text
        for pattern, new in rules:
            text = pattern.sub(new, text)
        drawn.append(Block(block.name, text, block.panic))
        lines.extend(text.splitlines(keepends=True))
    return lines, drawn


# ------------------------------------------------------------------------------------- runs


def run_errloop(lines: list[str]) -> tuple[float, int, int]:
    """Seconds, events, distinct fingerprints."""
    fingerprints: set[object] = set()
    events = 0
    t0 = time.perf_counter()
    for outcome in parse_lines(lines, source="/var/log/app/bench.log", host="bench", ingested_ns=0):
        if outcome.event is not None:
            events += 1
            fingerprints.add(outcome.event["fingerprint"])
    return time.perf_counter() - t0, events, len(fingerprints)


def drain3_miner(example_masking: bool) -> object:
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.profiling_enabled = False
    if example_masking:
        config.masking_instructions = [MaskingInstruction(p, m) for p, m in DRAIN3_EXAMPLE_MASKING]
        config.mask_prefix, config.mask_suffix = "<:", ":>"
        config.drain_sim_th = 0.4
        config.drain_depth = 4
        config.drain_max_children = 100
        config.drain_max_clusters = 1024
        config.drain_extra_delimiters = ["_"]
    return TemplateMiner(config=config)


def run_drain3(lines: list[str], example_masking: bool) -> tuple[float, int, int]:
    """Seconds, clusters ever made (cluster ids), clusters kept at the end."""
    miner = drain3_miner(example_masking)
    add = miner.add_log_message  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for line in lines:
        add(line.rstrip("\n"))
    elapsed = time.perf_counter() - t0
    drain = miner.drain  # type: ignore[attr-defined]
    return elapsed, int(drain.clusters_counter), len(drain.id_to_cluster)


# Which captured blocks show the same error (the rest: each its own). A service logs with one
# library, so the same error in two log formats may get two fingerprints (caller and frames
# differ); two different errors must never share one.
SAME_ERROR = {
    "golog: request failed: connection refused": "*.plain",
    # the same error value from handle("wrapped"), logged at error level or with the logger's Panic
    "golog: request failed: load user N: record not found (wrapped)": "*.wrapped *.log_panic",
    "golog: nil pointer dereference in main.total": "panic_nil http_panic",
    "golog: concurrent map writes": "concurrent_map concurrent_map_all",
    "demo: nil pointer dereference in displayName (recovered)": "demo_service:5 demo_service:6",
}


def error_kind(block_name: str) -> str:
    for kind, members in SAME_ERROR.items():
        for member in members.split():
            if block_name == member or (member.startswith("*") and block_name.endswith(member[1:])):
                return kind
    return block_name


def labelled_grouping(drawn: list[Block]) -> tuple[dict[str, int], list[str]]:
    """Each block normalised on its own: label (block, n-th event) → fingerprints; and the merges."""
    by_label: dict[str, set[str]] = defaultdict(set)
    for block in drawn:
        events = (o.event for o in parse_lines(block.text, host="bench", ingested_ns=0) if o.event is not None)
        for i, event in enumerate(events):
            by_label[f"{block.name}#{i}"].add(str(event["fingerprint"]))
    labels_of: dict[str, set[str]] = defaultdict(set)
    for label, fps in by_label.items():
        for fp in fps:
            labels_of[fp].add(label)
    kinds_of = {fp: {error_kind(label.split("#")[0]) for label in labels} for fp, labels in labels_of.items()}
    detail = [
        f"    {fp}: {'WRONG MERGE ' if len(kinds_of[fp]) > 1 else ''}{', '.join(sorted(labels))}"
        for fp, labels in sorted(labels_of.items())
        if len(labels) > 1
    ]
    summary = {
        "labels": len(by_label),
        "error kinds": len({error_kind(label.split("#")[0]) for label in by_label}),
        "fingerprints": len(labels_of),
        "labels split (>1 fingerprint)": sum(1 for fps in by_label.values() if len(fps) > 1),
        "fingerprints shared by labels of one error kind": sum(
            1 for fp, labels in labels_of.items() if len(labels) > 1 and len(kinds_of[fp]) == 1
        ),
        "wrong merges (fingerprints shared by different error kinds)": sum(1 for k in kinds_of.values() if len(k) > 1),
    }
    return summary, detail


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}; {platform.system()} {platform.release()}; Python {platform.python_version()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--panic-weight", type=float, default=0.1, help="weight of a panic dump vs a log block")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest counts")
    ap.add_argument("--profile", action="store_true", help="also profile the errloop run (cProfile, top 30)")
    ap.add_argument("--write", type=Path, help="also write the generated log to this file")
    args = ap.parse_args()

    from importlib.metadata import version

    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}; drain3 {version('drain3')}")
    lines, drawn = build_log(args.lines, args.seed, args.panic_weight)
    if args.write:
        args.write.write_text("".join(lines))
    n = len(lines)
    panic_lines = sum(len(b.text.splitlines()) for b in drawn if b.panic)
    kinds = len({b.name for b in drawn})
    print(f"log: {n} lines, {len(drawn)} blocks of {kinds} captured kinds ({panic_lines} lines in panic dumps)")

    el_s = d_s = dd_s = float("inf")
    for _ in range(args.repeat):  # alternated, best of each: the least disturbed run of a shared machine
        seconds, events, fps = run_errloop(lines)
        el_s = min(el_s, seconds)
        seconds, d_made, d_kept = run_drain3(lines, example_masking=True)
        d_s = min(d_s, seconds)
        seconds, dd_made, _ = run_drain3(lines, example_masking=False)
        dd_s = min(dd_s, seconds)

    print(f"errloop normaliser:        {n / el_s:>9,.0f} lines/s  ({el_s:.2f} s, {events} events, {fps} fingerprints)")
    print(
        f"Drain3 example masking:    {n / d_s:>9,.0f} lines/s  ({d_s:.2f} s, {d_made} clusters made, "
        f"{d_kept} kept under max_clusters=1024)"
    )
    print(f"Drain3 default config:     {n / dd_s:>9,.0f} lines/s  ({dd_s:.2f} s, {dd_made} clusters)")
    print(f"ratio errloop / Drain3 (example masking): {d_s / el_s:.2f}x   (goal >= 2x)")
    print(f"ratio errloop / Drain3 (default config):  {dd_s / el_s:.2f}x")

    summary, detail = labelled_grouping(drawn)
    print("labelled grouping (each block alone; label = captured block, n-th event of it):")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    print("  fingerprints shared by several labels:")
    print("\n".join(detail))

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_errloop(lines)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
