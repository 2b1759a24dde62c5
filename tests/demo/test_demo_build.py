"""The demo service's cache key, source discovery and startup-line parsing (no Go build)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from errloop.deploy import demo


def test_sources_are_found_as_package_data() -> None:
    files = demo.sources()
    assert "go.mod" in files and "go.sum" in files
    assert {"main.go", "handlers.go"} <= set(files)
    assert b"module github.com/errloop/demo" in files["go.mod"]
    assert all(name == "go.mod" or name == "go.sum" or name.endswith(".go") for name in files)


def test_source_hash_follows_content_not_order() -> None:
    files = demo.sources()
    reordered = dict(reversed(list(files.items())))
    assert demo.source_hash(files) == demo.source_hash(reordered)
    edited = {**files, "main.go": files["main.go"] + b"\n// edit\n"}
    assert demo.source_hash(edited) != demo.source_hash(files)
    renamed = {("other.go" if k == "main.go" else k): v for k, v in files.items()}
    assert demo.source_hash(renamed) != demo.source_hash(files)


def test_binary_path_is_keyed_by_hash(tmp_path: Path) -> None:
    path = demo.binary_path(tmp_path)
    assert path == tmp_path / demo.source_hash(demo.sources()) / "demo-service"


def test_default_cache_root_sits_beside_tick_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ERRLOOP_CACHE", str(tmp_path))
    assert demo.default_cache_root() == tmp_path / "demo"


def test_started_addr_takes_the_last_start_line() -> None:
    lines = [
        json.dumps({"level": "info", "msg": "service started", "addr": "127.0.0.1:1111"}),
        "not json at all",
        json.dumps({"level": "info", "msg": "request completed", "addr": "ignored"}),
        json.dumps({"level": "info", "msg": "service started", "addr": "127.0.0.1:2222"}),
        '{"msg": "service started", "addr": 5}',
    ]
    assert demo.started_addr("\n".join(lines)) == "127.0.0.1:2222"
    assert demo.started_addr("") is None
    assert demo.started_addr('{"msg": "service started"}') is None
