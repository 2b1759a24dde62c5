"""Build tests/golog (a real Go program printing real error output) once, cached by source hash, and run it.

Like ``errloop.deploy.demo``: the sources (``go.mod``, ``go.sum``, ``*.go`` here and in
``deadlock/``) are copied to a temporary directory, built with ``GOTOOLCHAIN=local`` and
``-trimpath``, and the binaries installed atomically under ``<cache>/golog/<hash>/``.

``python tests/golog/golog.py [OUT_DIR]`` captures every format and case into
``OUT_DIR`` (default ``tests/telegraf/data/golog``): one ``<name>.log`` per capture and a
``VERSIONS.txt`` saying which Go and modules produced them.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from errloop.deploy import gobuild

HERE = Path(__file__).resolve().parent
LOG_FORMATS = (
    "zap_json",
    "zap_console",
    "logrus_json",
    "logrus_text",
    "slog_json",
    "slog_text",
    "zerolog_json",
    "klog",
    "stdlog",
    "stdlog_micro",
    "stdlog_shortfile",
    "stdlog_longfile",
    "stdlog_utc",
    "stdlog_msgprefix",
    "logfmt",
)
LOG_CASES = ("wrapped", "plain")
LOG_PANIC_FORMATS = ("zap_json", "zap_console", "logrus_json", "logrus_text", "zerolog_json")
"""Formats whose logger has a panic level (``-case log_panic``: the record, then the runtime's dump)."""
PANIC_CASES = (
    "panic_nil",
    "panic_value",
    "panic_custom",
    "panic_recovered",
    "concurrent_map",
    "deadlock",
    "oom",
    "sigquit",
    "http_panic",
)
OOM_ADDRESS_SPACE = 1 << 30  # RLIMIT_AS for the "oom" case: the runtime runs out of memory within it


def sources() -> dict[str, bytes]:
    """Source files by path relative to tests/golog."""
    return gobuild.tree_sources(HERE)


def cache_root() -> Path:
    """Beside the demo service's cache: ``<errloop cache>/golog``."""
    return gobuild.cache_base() / "golog"


def build(root: Path | None = None) -> Path:
    """The directory holding the built ``golog`` and ``deadlock`` binaries; built when the sources changed."""
    targets = {"golog": ".", "deadlock": "./deadlock"}
    return gobuild.build_cached(sources(), root or cache_root(), targets, say=lambda _: None, what="golog printer")


@dataclass(frozen=True)
class Output:
    text: str  # what the program wrote to stderr (all formats log there; so does the runtime)
    returncode: int


def run(bin_dir: Path, fmt: str = "zap_json", case: str = "wrapped", *, traceback: str = "") -> Output:
    env = dict(os.environ)
    env.pop("GOTRACEBACK", None)
    env["TZ"] = "UTC"  # klog and the log package write local time
    if traceback:
        env["GOTRACEBACK"] = traceback

    def limit() -> None:  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_AS, (OOM_ADDRESS_SPACE, OOM_ADDRESS_SPACE))

    proc = subprocess.run(
        [str(bin_dir / "golog"), "-format", fmt, "-case", case],
        env=env,
        preexec_fn=limit if case == "oom" else None,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return Output(proc.stderr.decode("utf-8", "replace"), proc.returncode)


def captures(bin_dir: Path) -> dict[str, Output]:
    """Every capture by name: ``<format>.<case>`` for log lines, ``<case>`` for panics (``concurrent_map_all`` with GOTRACEBACK=all)."""
    out = {f"{fmt}.{case}": run(bin_dir, fmt, case) for fmt in LOG_FORMATS for case in LOG_CASES}
    out.update({f"{fmt}.log_panic": run(bin_dir, fmt, "log_panic") for fmt in LOG_PANIC_FORMATS})
    out.update({case: run(bin_dir, case=case) for case in PANIC_CASES})
    out["concurrent_map_all"] = run(bin_dir, case="concurrent_map", traceback="all")
    return out


def _versions() -> str:
    go = subprocess.run(
        ["go", "version"], capture_output=True, text=True, env=gobuild.go_env(), check=False
    ).stdout.strip()
    mods = [ln.strip() for ln in (HERE / "go.mod").read_text().splitlines() if ln.startswith("\t")]
    return f"{go}\nsources {gobuild.source_hash(sources())}\n" + "\n".join(mods) + "\n"


def main(argv: list[str]) -> int:
    dest = Path(argv[1]) if len(argv) > 1 else HERE.parent / "telegraf" / "data" / "golog"
    dest.mkdir(parents=True, exist_ok=True)
    bin_dir = build()
    for name, output in captures(bin_dir).items():
        (dest / f"{name}.log").write_text(output.text)
    (dest / "VERSIONS.txt").write_text(
        "Captured by `python tests/golog/golog.py` from tests/golog (stderr of each run, as printed).\n" + _versions()
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
