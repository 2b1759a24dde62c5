"""Build InfluxDB, Kapacitor and Telegraf from the Go module proxy, cached by version.

The recipe is TICK-STACK.md's: ``GOTOOLCHAIN=local``, stable Rust with lints capped
(through a rustc wrapper, since cargo ignores RUSTFLAGS for build scripts under
``--target``), InfluxData's ``pkg-config`` that builds libflux with cargo.
A cold build takes minutes: progress is printed while each step runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from errloop.deploy.stack import versions

RUSTC_WRAPPER = """#!/bin/sh
# Appends --cap-lints=warn unless given: flux's crates deny warnings that today's rustc emits.
rustc="$1"; shift
case " $* " in *" --cap-lints"*) exec "$rustc" "$@";; esac
exec "$rustc" "$@" --cap-lints=warn
"""


@dataclass(frozen=True)
class Binaries:
    """Paths of the built programs."""

    influxd: Path
    kapacitord: Path
    kapacitor: Path
    telegraf: Path


def binaries(root: Path | None = None) -> Binaries:
    """Where the pinned binaries are (or will be) cached."""
    root = root or versions.cache_dir()
    return Binaries(
        influxd=root / f"influxdb-{versions.INFLUXDB}" / "influxd",
        kapacitord=root / f"kapacitor-{versions.KAPACITOR}" / "kapacitord",
        kapacitor=root / f"kapacitor-{versions.KAPACITOR}" / "kapacitor",
        telegraf=root / f"telegraf-{versions.TELEGRAF}-{_tags_key()}" / "telegraf",
    )


def _tags_key() -> str:
    import hashlib

    return hashlib.sha256(versions.TELEGRAF_TAGS.encode()).hexdigest()[:8]


def is_built(root: Path | None = None) -> bool:
    b = binaries(root)
    return all(p.is_file() and os.access(p, os.X_OK) for p in (b.influxd, b.kapacitord, b.kapacitor, b.telegraf))


class _Progress:
    """Prints one line every few seconds while a long step runs."""

    def __init__(self, say: Callable[[str], None], step: str, log: Path, every: float = 15.0) -> None:
        self.say, self.step, self.log, self.every = say, step, log, every
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Progress:
        self.say(f"  building {self.step} …")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.say(f"  {self.step}: {'done' if exc[0] is None else 'FAILED'} in {time.monotonic() - self.start:.0f} s")

    def _run(self) -> None:
        shown = ""
        while not self._stop.wait(self.every):
            last = _last_line(self.log)
            news = last[:100] if last != shown else "(compiling)"
            shown = last
            self.say(f"  … {self.step} {time.monotonic() - self.start:.0f} s  {news}")


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else ""
    except OSError:
        return ""


class BuildError(RuntimeError):
    pass


def _run(cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> str:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=out, check=False)
        out.write(proc.stdout)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(cmd[:3])} … failed (exit {proc.returncode}); see {log}")
    return proc.stdout.decode()


def _env(work: Path) -> dict[str, str]:
    for tool in ("go", "cargo"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} is not on PATH: the TICK stack is built from source (TICK-STACK.md)")
    wrapper = work / "rustc-cap-lints"
    wrapper.write_text(RUSTC_WRAPPER)
    wrapper.chmod(0o755)
    env = dict(os.environ)
    env.update(
        GOTOOLCHAIN="local",
        RUSTUP_TOOLCHAIN="stable",
        RUSTC_WRAPPER=str(wrapper),
        GOFLAGS="-modcacherw",
        CGO_ENABLED="1",
    )
    return env


def build(root: Path | None = None, say: Callable[[str], None] = print) -> Binaries:
    """Build whatever pinned binary is missing from the cache; return their paths."""
    root = root or versions.cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    target = binaries(root)
    log = root / "build.log"
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="errloop-build-") as tmp:
        work = Path(tmp)
        env = _env(work)
        gobin = work / "bin"
        gobin.mkdir()
        env["GOBIN"] = str(gobin)

        pkgc = root / f"pkg-config-{versions.PKG_CONFIG}" / "pkg-config"
        if not pkgc.exists():
            with _Progress(say, f"pkg-config v{versions.PKG_CONFIG}", log):
                _run(["go", "install", f"github.com/influxdata/pkg-config@v{versions.PKG_CONFIG}"], env, log)
                _install(gobin / "pkg-config", pkgc)
        env["PKG_CONFIG"] = str(pkgc)

        if not target.telegraf.exists():
            with _Progress(say, f"telegraf v{versions.TELEGRAF}", log):
                _run(
                    [
                        "go",
                        "install",
                        "-ldflags",
                        f"-X github.com/influxdata/telegraf/internal.Version={versions.TELEGRAF}",
                        "-tags",
                        versions.TELEGRAF_TAGS,
                        f"github.com/influxdata/telegraf/cmd/telegraf@v{versions.TELEGRAF}",
                    ],
                    env,
                    log,
                )
                _install(gobin / "telegraf", target.telegraf)

        if not target.influxd.exists():
            with _Progress(say, f"influxd v{versions.INFLUXDB} (includes libflux, Rust)", log):
                _run(
                    [
                        "go",
                        "install",
                        "-ldflags",
                        f"-X main.version={versions.INFLUXDB}",
                        f"github.com/influxdata/influxdb/cmd/influxd@v{versions.INFLUXDB}",
                    ],
                    env,
                    log,
                )
                _install(gobin / "influxd", target.influxd)

        if not (target.kapacitord.exists() and target.kapacitor.exists()):
            with _Progress(say, f"kapacitord v{versions.KAPACITOR} (includes libflux, Rust)", log):
                src = kapacitor_source(env, log)
                tree = work / "kapacitor"
                shutil.copytree(src, tree)
                for d in tree.rglob("*"):
                    if d.is_dir() or d.suffix == ".sh":
                        d.chmod(d.stat().st_mode | 0o700)
                ld = f"-X main.version={versions.KAPACITOR}"
                out = work / "kbin"
                for cmd in ("kapacitord", "kapacitor"):
                    _run(["go", "build", "-ldflags", ld, "-o", str(out / cmd), f"./cmd/{cmd}"], env, log, cwd=tree)
                _install(out / "kapacitord", target.kapacitord)
                _install(out / "kapacitor", target.kapacitor)
    say(f"TICK stack binaries ready in {root} ({time.monotonic() - t0:.0f} s)")
    return target


def kapacitor_source(env: dict[str, str] | None = None, log: Path | None = None) -> Path:
    """The Kapacitor module source directory (downloaded into the Go module cache)."""
    env = env or {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-modcacherw"}
    log = log or versions.cache_dir() / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    out = _run(["go", "mod", "download", "-json", f"github.com/influxdata/kapacitor@v{versions.KAPACITOR}"], env, log)
    info = json.loads(out)
    if "Dir" not in info:
        raise BuildError(f"go mod download gave no Dir: {info.get('Error', info)}")
    return Path(info["Dir"])


def _install(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    shutil.copy2(src, tmp)
    tmp.replace(dst)  # atomic: a half-copied binary never looks built


def main() -> int:
    try:
        build()
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
