"""Go programs errloop builds from source (the demo service, the tests' log printer), cached by source hash.

The sources are copied to a temporary directory, built with the machine's Go
(``GOTOOLCHAIN=local``, ``-trimpath`` so stack frames read the module path on every
machine) and installed atomically under ``<cache>/<name>/<hash>/``; a binary is reused
until its sources or the build command change. The TICK programs have their own recipe
(``errloop.deploy.stack.build``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from errloop.deploy.stack import versions
from errloop.deploy.stack.build import BuildError

# Part of the cache key: changing how binaries are built rebuilds them.
BUILD_ARGS = ("go", "build", "-trimpath", "-o")


def cache_base() -> Path:
    """errloop's cache directory (the TICK binaries live in its ``tick/``)."""
    return versions.cache_dir().parent


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    flags = env.get("GOFLAGS", "").split()
    if "-modcacherw" not in flags:
        flags.append("-modcacherw")  # a module cache the machine can clean up
    env.update(GOTOOLCHAIN="local", GOFLAGS=" ".join(flags))
    return env


def is_go_source(name: str) -> bool:
    """``go.mod``, ``go.sum`` and ``*.go``: what a cached build hashes."""
    return name in ("go.mod", "go.sum") or name.endswith(".go")


def tree_sources(root: Path) -> dict[str, bytes]:
    """The Go sources below ``root`` (a checkout folder) by path relative to it."""
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and is_go_source(path.name):
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def source_hash(files: Mapping[str, bytes]) -> str:
    """A short digest of the file names, their contents and the build command."""
    h = hashlib.sha256("\0".join(BUILD_ARGS).encode())
    for name in sorted(files):
        h.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()[:16]


def build_cached(
    files: Mapping[str, bytes],
    root: Path,
    targets: Mapping[str, str],
    say: Callable[[str], None] = print,
    what: str = "Go program",
) -> Path:
    """Build ``targets`` (binary name → package path, e.g. ``{"golog": "."}``) from ``files``
    (path relative to the module root → bytes) into ``root/<hash>/``; return that directory."""
    target = root / source_hash(files)
    if all(os.access(target / name, os.X_OK) for name in targets):
        return target
    if shutil.which("go") is None:
        raise BuildError(f"go is not on PATH: the {what} is built from source")
    say(f"  building the {what} → {target}")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="errloop-gobuild-") as tmp:
        src = Path(tmp) / "src"
        for name, data in files.items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes(data)
        for binary, package in targets.items():
            out = Path(tmp) / "bin" / binary
            proc = subprocess.run(
                [*BUILD_ARGS, str(out), package], cwd=src, env=go_env(), capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
                raise BuildError(f"go build of the {what} failed (exit {proc.returncode}):\n{tail}")
            install(out, target / binary)
    say(f"  {what} built in {time.monotonic() - t0:.1f} s")
    return target


def install(src: Path, dst: Path) -> None:
    """Copy next to the destination, then rename: a half-copied binary never looks built."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(src, tmp)
        tmp.chmod(0o755)
        tmp.replace(dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
