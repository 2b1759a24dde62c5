"""The Go service of the quick-start scenario: build it (cached by source hash) and run it.

The sources live in ``service/`` beside this file (package data: ``*.go``, ``go.mod``,
``go.sum``). ``build_service`` builds them with :mod:`errloop.deploy.gobuild` into
``<cache>/demo/<hash>/demo-service``; a cached binary is reused until the sources change.
``serve`` starts a built binary and stops it with SIGTERM.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from errloop.deploy import gobuild
from errloop.deploy.gobuild import source_hash
from errloop.deploy.stack.build import BuildError

BINARY = "demo-service"


def sources() -> dict[str, bytes]:
    """The service's source files by name, read from the installed package."""
    folder: Traversable = resources.files(__name__).joinpath("service")
    found = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file() and gobuild.is_go_source(f.name)}
    if "go.mod" not in found or not any(n.endswith(".go") for n in found):
        raise BuildError(f"demo service sources missing from the installed package ({folder}); check package_data")
    return found


def default_cache_root() -> Path:
    """Beside the TICK binaries' cache: ``<cache>/demo``."""
    return gobuild.cache_base() / "demo"


def binary_path(cache_root: Path | None = None) -> Path:
    """Where the binary of the current sources is (or will be) cached."""
    return (cache_root or default_cache_root()) / source_hash(sources()) / BINARY


def build_service(cache_root: Path | None = None, say: Callable[[str], None] = print) -> Path:
    """Return the path of the demo service binary, building it first if the sources changed."""
    root = cache_root or default_cache_root()
    return gobuild.build_cached(sources(), root, {BINARY: "."}, say=say, what="demo service") / BINARY


@dataclass(frozen=True)
class Running:
    """A started demo service."""

    process: subprocess.Popen[bytes]
    addr: str
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://{self.addr}"


def started_addr(log_text: str) -> str | None:
    """The listen address from the last "service started" line of some log text."""
    addr = None
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("msg") == "service started" and isinstance(entry.get("addr"), str):
            addr = entry["addr"]
    return addr


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


@contextmanager
def serve(
    binary: Path,
    log_file: Path,
    *,
    addr: str = "127.0.0.1:0",
    service: str = "user-api",
    extra_args: tuple[str, ...] = (),
    timeout: float = 10.0,
) -> Iterator[Running]:
    """Run the demo service until the block ends, then stop it with SIGTERM.

    With port 0 the service picks a free port; the address is read from its log.
    Appending to an existing log file is fine: the newest "service started" line wins.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    before = log_file.stat().st_size if log_file.exists() else 0
    cmd = [str(binary), "--addr", addr, "--log-file", str(log_file), "--service", service, *extra_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        found: str | None = None
        while found is None:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"demo service exited with {proc.returncode} at startup: {err.strip()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"demo service did not log 'service started' within {timeout} s")
            found = started_addr(_read_from(log_file, before))
            if found is None:
                time.sleep(0.05)
        yield Running(process=proc, addr=found, log_file=log_file)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


def main() -> int:
    """``python -m errloop.deploy.demo``: build (or find) the binary and print its path."""
    try:
        path = build_service(say=lambda s: print(s, file=sys.stderr))
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0
