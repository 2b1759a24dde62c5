"""The UDF registry, the CLI entry and the shipped sample configs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import errloop.udf
from errloop.udf import registry
from errloop.udf.agent import Edge, ValueType

UDF_DIR = Path(errloop.udf.__file__).parent


def test_names_and_info() -> None:
    assert registry.NAMES == ["errloop_classify", "errloop_mirror"]
    classify = registry.info("errloop_classify")
    assert (classify.wants, classify.provides) == (Edge.STREAM, Edge.STREAM)
    assert {s.name: s.types for s in classify.options} == {
        "rules": (ValueType.STRING,),
        "reload": (ValueType.DURATION,),
        "window": (ValueType.DURATION,),
        "keep": (ValueType.STRING,),
        "sampleRate": (ValueType.DOUBLE,),
    }
    assert registry.info("errloop_mirror").options == ()
    with pytest.raises(KeyError, match="known: errloop_classify, errloop_mirror"):
        registry.info("nope")


@pytest.mark.parametrize("name", registry.NAMES)
def test_kapacitor_conf_snippet_is_valid_toml(name: str) -> None:
    doc = tomllib.loads(registry.kapacitor_conf(name, python="/opt/venv/bin/python"))
    section = doc["udf"]["functions"][name]
    assert section == {"prog": "/opt/venv/bin/python", "args": ["-m", "errloop.udf", name], "timeout": "10s"}
    doc = tomllib.loads(registry.kapacitor_conf(name, socket='/run/x "y".sock', timeout="30s"))
    assert doc["udf"]["functions"][name] == {"socket": '/run/x "y".sock', "timeout": "30s"}


@pytest.mark.parametrize(("folder", "name"), [("classify", "errloop_classify"), ("mirror", "errloop_mirror")])
def test_sample_conf_declares_the_udf(folder: str, name: str) -> None:
    doc = tomllib.loads((UDF_DIR / folder / "sample.conf").read_text())
    section = doc["udf"]["functions"][name]
    assert section["args"] == ["-m", "errloop.udf", name]
    assert section["prog"].startswith("/")  # Kapacitor's cwd is not ours: absolute paths only
    assert section["timeout"]
    assert (UDF_DIR / folder / "README.md").is_file()


def test_main_rejects_an_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert registry.main("nope", None) == 64
    assert "unknown UDF 'nope'" in capsys.readouterr().err


def test_module_entry_point_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "errloop.udf", "nope"], capture_output=True, timeout=20)
    assert proc.returncode == 2
    assert b"invalid choice" in proc.stderr
    assert proc.stdout == b""
