"""Shared fixtures. ``tick_stack`` starts a real InfluxDB, Kapacitor and Telegraf once per session.

The stack is built by the project's own scripts (deploy/stack) on first use and cached by
version; it runs on free loopback ports with a private state directory and is stopped
at the end of the session (set ERRLOOP_KEEP_STACK=1 to leave it running). When a test
that uses it fails, the tail of each program's log is added to the report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from errloop.deploy.generate import bundled_httppost_conf
from errloop.deploy.stack import run


def _test_udf(name: str, handler: str) -> str:
    sys.path.insert(0, str(Path(__file__).parent / "udf"))
    from udf_wire import handler_command

    argv = handler_command(handler)
    return f"""
[udf.functions.{name}]
  prog = {json.dumps(argv[0])}
  args = {json.dumps(argv[1:])}
  timeout = "10s"
"""


# test-only UDFs the real Kapacitor of the test stack knows besides errloop's own
TEST_UDFS = _test_udf("errloop_test_flaky", "FlakyHandler")


@pytest.fixture(scope="session")
def tick_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[run.StackConfig]:
    state = Path(os.environ.get("ERRLOOP_TEST_STACK_DIR") or tmp_path_factory.mktemp("stack"))
    # a socket-mode UDF must be listening before kapacitord starts (it asks every UDF for its info)
    sock = Path(tempfile.mkdtemp(prefix="errloop-sock-")) / "mirror.sock"  # short: unix socket paths are limited
    mirror = subprocess.Popen(
        [sys.executable, "-m", "errloop.udf", "errloop_mirror", "--socket", str(sock)], stderr=subprocess.DEVNULL
    )
    _wait_for_socket(sock, mirror)
    socket_udf = f'\n[udf.functions.errloop_test_mirror_socket]\n  socket = "{sock}"\n  timeout = "10s"\n'
    cfg = run.StackConfig.private(
        state,
        kapacitor_extra=bundled_httppost_conf() + TEST_UDFS + socket_udf,
    )
    try:
        run.up(cfg, say=lambda line: print(line, flush=True))
    except Exception:
        for program in run.PROGRAMS:
            print(f"--- {program} log ---\n{run.tail(cfg.log_path(program), 80)}")
        run.down(cfg, say=print)
        mirror.terminate()
        raise
    yield cfg
    if not os.environ.get("ERRLOOP_KEEP_STACK"):
        run.down(cfg, say=lambda line: None)
        mirror.terminate()
        mirror.wait(10)
        shutil.rmtree(sock.parent, ignore_errors=True)


def _wait_for_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the socket-mode mirror UDF did not start (exit {proc.poll()})")
        time.sleep(0.05)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and "tick_stack" in getattr(item, "fixturenames", ()):
        cfg = item.funcargs.get("tick_stack") if hasattr(item, "funcargs") else None  # type: ignore[attr-defined]
        if isinstance(cfg, run.StackConfig):
            for program in run.PROGRAMS:
                report.sections.append((f"{program} log (tail)", run.tail(cfg.log_path(program), 60)))
