"""Build tests/golog (a real Go program printing real error output) once, cached by source hash, and run it.

Like ``errloop.deploy.demo``: the sources (``go.mod``, ``go.sum``, ``*.go`` here and in
``deadlock/``) are copied to a temporary directory, built with ``GOTOOLCHAIN=local`` and
``-trimpath``, and the binaries installed atomically under ``<cache>/golog/<hash>/``.

``python tests/golog/golog.py [OUT_DIR]`` captures every format and case into
``OUT_DIR`` (default ``tests/telegraf/data/golog``): one ``<name>.log`` per capture and a
``VERSIONS.txt`` saying which Go and modules produced them.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_ARGS = ("go", "build", "-trimpath", "-o")
BINARIES = ("golog", "deadlock")
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


class BuildError(RuntimeError):
    pass


def sources() -> dict[str, bytes]:
    """Source files by path relative to tests/golog."""
    found: dict[str, bytes] = {}
    for path in sorted(HERE.rglob("*")):
        rel = path.relative_to(HERE).as_posix()
        if path.is_file() and (path.name in ("go.mod", "go.sum") or path.suffix == ".go"):
            found[rel] = path.read_bytes()
    return found


def source_hash(files: dict[str, bytes]) -> str:
    h = hashlib.sha256("\0".join(BUILD_ARGS).encode())
    for name in sorted(files):
        h.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """Beside the demo service's cache: ``<errloop cache>/golog``."""
    env = os.environ.get("ERRLOOP_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "errloop"
    return base / "golog"


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    flags = env.get("GOFLAGS", "").split()
    if "-modcacherw" not in flags:
        flags.append("-modcacherw")
    env.update(GOTOOLCHAIN="local", GOFLAGS=" ".join(flags))
    return env


def build(root: Path | None = None) -> Path:
    """The directory holding the built ``golog`` and ``deadlock`` binaries; built when the sources changed."""
    files = sources()
    target = (root or cache_root()) / source_hash(files)
    if all(os.access(target / b, os.X_OK) for b in BINARIES):
        return target
    if shutil.which("go") is None:
        raise BuildError("go is not on PATH")
    with tempfile.TemporaryDirectory(prefix="errloop-golog-") as tmp:
        src = Path(tmp) / "src"
        for name, data in files.items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes(data)
        out = Path(tmp) / "bin"
        out.mkdir()
        proc = subprocess.run(
            [*BUILD_ARGS, str(out) + "/", ".", "./deadlock"],
            cwd=src,
            env=go_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise BuildError(f"go build failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        target.mkdir(parents=True, exist_ok=True)
        for b in BINARIES:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{b}.", dir=target)
            os.close(fd)
            shutil.copyfile(out / b, tmp_name)
            os.chmod(tmp_name, 0o755)
            os.replace(tmp_name, target / b)
    return target


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
    out.update({case: run(bin_dir, case=case) for case in PANIC_CASES})
    out["concurrent_map_all"] = run(bin_dir, case="concurrent_map", traceback="all")
    return out


def _versions() -> str:
    go = subprocess.run(["go", "version"], capture_output=True, text=True, env=go_env(), check=False).stdout.strip()
    mods = [ln.strip() for ln in (HERE / "go.mod").read_text().splitlines() if ln.startswith("\t")]
    return f"{go}\nsources {source_hash(sources())}\n" + "\n".join(mods) + "\n"


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
