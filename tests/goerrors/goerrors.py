"""Build tests/goerrors (a Go program provoking real failures, labelled) once, cached by source hash, and run it.

Like ``tests/golog/golog.py``: the sources (``go.mod``, ``go.sum``, ``*.go`` here and in
``deadlock/``) are copied to a temporary directory, built with ``GOTOOLCHAIN=local``,
``-trimpath`` and ``-modcacherw`` (``errloop.deploy.gobuild``) and the binaries installed
atomically under ``<errloop cache>/goerrors/<hash>/``.

``python tests/goerrors/goerrors.py [OUT_FILE]`` recaptures the program's output into
``OUT_FILE`` (default ``tests/rules/data/labelled_go_errors.jsonl``): one zap production JSON
line per provoked failure, each with ``errloop_label = "category/class/retryable"`` set by
the scenario; a ``.VERSIONS.txt`` note beside it says which Go and modules produced it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from errloop.deploy import gobuild

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "rules" / "data" / "labelled_go_errors.jsonl"
RUN_TIMEOUT_S = 180


def sources() -> dict[str, bytes]:
    """Source files by path relative to tests/goerrors."""
    return gobuild.tree_sources(HERE)


def cache_root() -> Path:
    """Beside golog's cache: ``<errloop cache>/goerrors``."""
    return gobuild.cache_base() / "goerrors"


def build(root: Path | None = None) -> Path:
    """The directory holding the built ``goerrors`` and ``deadlock`` binaries; built when the sources changed."""
    targets = {"goerrors": ".", "deadlock": "./deadlock"}
    return gobuild.build_cached(sources(), root or cache_root(), targets, say=lambda _: None, what="goerrors program")


@dataclass(frozen=True)
class Output:
    lines: list[str]  # the JSON lines (stdout)
    summary: str  # stderr: counts per kind and the skipped scenarios
    returncode: int


def run(bin_dir: Path, only: str = "") -> Output:
    """Run every scenario (or the comma-separated groups in ``only``) and return its output."""
    env = dict(os.environ)
    env.pop("GOTRACEBACK", None)
    env["TZ"] = "UTC"
    argv = [str(bin_dir / "goerrors")] + (["-only", only] if only else [])
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
    stdout = proc.stdout.decode("utf-8", "replace")
    return Output(
        [ln for ln in stdout.splitlines() if ln.strip()], proc.stderr.decode("utf-8", "replace"), proc.returncode
    )


def _versions() -> str:
    go = subprocess.run(
        ["go", "version"], capture_output=True, text=True, env=gobuild.go_env(), check=False
    ).stdout.strip()
    mods = [ln.strip() for ln in (HERE / "go.mod").read_text().splitlines() if ln.startswith("\t")]
    return f"{go}\nsources {gobuild.source_hash(sources())}\n" + "\n".join(mods) + "\n"


def main(argv: list[str]) -> int:
    dest = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    dest.parent.mkdir(parents=True, exist_ok=True)
    out = run(build())
    if out.returncode != 0 or not out.lines:
        sys.stderr.write(out.summary)
        return 1
    dest.write_text("\n".join(out.lines) + "\n", encoding="utf-8")
    note = dest.with_name(dest.name.removesuffix(".jsonl") + ".VERSIONS.txt")
    note.write_text(
        "Captured by `python tests/goerrors/goerrors.py` from tests/goerrors (stdout of one run).\n"
        + _versions()
        + "\n"
        + out.summary
    )
    sys.stderr.write(out.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
