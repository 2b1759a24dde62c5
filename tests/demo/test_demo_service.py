"""The demo Go service, built with the machine's Go and run on a free loopback port.

These are the log lines the rest of errloop parses: each test asserts the shape of one kind.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from errloop.deploy import demo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    said: list[str] = []
    path: Path = demo.build_service(tmp_path_factory.mktemp("cache"), say=said.append)
    assert said, "a cold cache must report the build"
    return path


@pytest.fixture
def running(binary: Path, tmp_path: Path) -> Iterator[demo.Running]:
    with demo.serve(binary, tmp_path / "svc.log") as svc:
        yield svc


def entries(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def new_entries(log: Path, before: int, want: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Entries written after the first `before` ones, waiting until at least `want` are there."""
    deadline = time.monotonic() + timeout
    while True:
        got = entries(log)[before:]
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def errors_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in items if e["level"] == "error"]


def first_frame(stacktrace: str) -> tuple[str, str]:
    func, file = stacktrace.splitlines()[:2]
    return func, file.strip()


def assert_request_fields(e: dict[str, Any], method: str, path: str, status: int, trace_id: str) -> None:
    assert e["service"] == "user-api"
    assert isinstance(e["ts"], float)
    assert re.match(r"^demo/\w+\.go:\d+$", e["caller"])
    assert (e["method"], e["path"], e["status"]) == (method, path, status)
    assert isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0
    assert e["trace_id"] == trace_id


def test_build_is_cached_until_sources_change(binary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = binary.parent.parent
    mtime = binary.stat().st_mtime_ns
    said: list[str] = []
    assert demo.build_service(root, say=said.append) == binary
    assert said == [] and binary.stat().st_mtime_ns == mtime

    files = demo.sources()
    edited = {**files, "main.go": files["main.go"] + b"\n// a source edit\n"}
    monkeypatch.setattr(demo, "sources", lambda: edited)
    rebuilt = demo.build_service(root, say=said.append)
    assert rebuilt != binary and rebuilt.parent.name == demo.source_hash(edited)
    assert rebuilt.is_file() and said
    assert not [p for p in rebuilt.parent.iterdir() if p.name != "demo-service"], "no temp file left behind"


def test_validation_failure_logs_one_error_line(running: demo.Running) -> None:
    before = len(entries(running.log_file))
    r = httpx.post(f"{running.url}/api/v1/users", json={"name": "", "email": "invalid"})
    assert r.status_code == 400
    trace_id = r.headers["X-Trace-Id"]
    assert HEX32.match(trace_id) and r.json()["trace_id"] == trace_id
    assert {"field": "Name", "tag": "required"} in r.json()["invalid_fields"]

    errs = errors_of(new_entries(running.log_file, before))
    assert len(errs) == 1
    e = errs[0]
    assert e["msg"] == "create user failed"
    assert_request_fields(e, "POST", "/api/v1/users", 400, trace_id)
    assert "Key: 'CreateUserRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag" in e["error"]
    assert "Field validation for 'Email' failed on the 'email' tag" in e["error"]
    assert e["error_type"] == "validator.ValidationErrors"
    func, file = first_frame(e["stacktrace"])
    assert func == "main.(*app).createUser"
    assert file.startswith("github.com/errloop/demo/handlers.go:")
    assert e["caller"] == "demo/" + file.removeprefix("github.com/errloop/demo/")


def test_invalid_json_logs_the_decode_error(running: demo.Running) -> None:
    before = len(entries(running.log_file))
    r = httpx.post(f"{running.url}/api/v1/users", content=b'{"name": nope}')
    assert r.status_code == 400
    errs = errors_of(new_entries(running.log_file, before))
    assert len(errs) == 1
    assert errs[0]["msg"] == "create user failed"
    assert errs[0]["error_type"] == "*json.SyntaxError"
    assert "invalid character" in errs[0]["error"]
    assert errs[0]["trace_id"] == r.headers["X-Trace-Id"]


def test_valid_user_is_created_without_error(running: demo.Running) -> None:
    before = len(entries(running.log_file))
    r = httpx.post(f"{running.url}/api/v1/users", json={"name": "Ada", "email": "ada@example.com"})
    assert r.status_code == 201
    assert r.json()["name"] == "Ada"
    got = new_entries(running.log_file, before)
    assert errors_of(got) == []
    assert got[0]["msg"] == "request completed" and got[0]["status"] == 201
    assert httpx.get(f"{running.url}/api/v1/users/{r.json()['id']}").status_code == 200


def test_panic_is_recovered_with_the_goroutine_stack(running: demo.Running) -> None:
    before = len(entries(running.log_file))
    r = httpx.get(f"{running.url}/api/v1/panic")
    assert r.status_code == 500
    errs = errors_of(new_entries(running.log_file, before))
    assert len(errs) == 1
    e = errs[0]
    assert e["msg"] == "panic recovered"
    assert_request_fields(e, "GET", "/api/v1/panic", 500, r.headers["X-Trace-Id"])
    assert "nil pointer dereference" in e["error"] and e["panic"] == e["error"]
    assert e["error_type"] == "runtime.errorString"
    stack = e["stacktrace"]
    assert re.match(r"^goroutine \d+ \[running\]:\n", stack)
    assert "main.(*app).panicky(" in stack and "github.com/errloop/demo/handlers.go:" in stack
    # the panicking frame comes after panic(...) and before the handler
    assert stack.index("panic(") < stack.index("main.displayName(") < stack.index("main.(*app).panicky(")


def test_slow_downstream_times_out(binary: Path, tmp_path: Path) -> None:
    log = tmp_path / "slow.log"
    with demo.serve(binary, log, extra_args=("--downstream-timeout", "50ms")) as svc:
        before = len(entries(log))
        r = httpx.get(f"{svc.url}/api/v1/slow", timeout=10)
        assert r.status_code == 504
        errs = errors_of(new_entries(log, before))
    assert len(errs) == 1
    e = errs[0]
    assert e["msg"] == "downstream call failed"
    assert_request_fields(e, "GET", "/api/v1/slow", 504, r.headers["X-Trace-Id"])
    assert e["error"] == "call inventory: context deadline exceeded"
    assert e["error_type"] == "*fmt.wrapError"
    assert e["downstream"] == "inventory" and e["timeout"] == 0.05
    assert 50 <= e["duration_ms"] < 1000  # the deadline, not the downstream's 1 s delay
    assert first_frame(e["stacktrace"])[0] == "main.(*app).slow"


def test_sigterm_exits_zero_and_service_flag_tags_every_line(binary: Path, tmp_path: Path) -> None:
    log = tmp_path / "term.log"
    with demo.serve(binary, log, service="billing") as svc:
        assert httpx.get(f"{svc.url}/healthz").status_code == 200
        svc.process.send_signal(signal.SIGTERM)
        assert svc.process.wait(timeout=10) == 0
    lines = entries(log)
    assert {e["service"] for e in lines} == {"billing"}
    assert [e["msg"] for e in lines][-2:] == ["shutting down", "service stopped"]


def test_logs_go_to_stdout_without_log_file(binary: Path) -> None:
    proc = subprocess.Popen([str(binary), "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        start = json.loads(proc.stdout.readline())
        assert start["msg"] == "service started" and start["service"] == "user-api"
        assert start["downstream_timeout"] == 0.2  # the 200ms default
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert json.loads(out.splitlines()[-1])["msg"] == "service stopped"
