"""The plugin's config: sample.conf and telegraf.conf parse; mistakes are named."""

from __future__ import annotations

import socket
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from errloop.telegraf.errlog.config import Config, ConfigError, from_mapping, load_config, parse_duration

PKG = resources.files("errloop.telegraf.errlog")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "errlog.toml"
    path.write_text(text)
    return path


def test_sample_conf_loads(tmp_path: Path) -> None:
    sample = PKG.joinpath("sample.conf").read_text(encoding="utf-8")
    cfg = load_config(write(tmp_path, sample))
    assert cfg.files == ("/var/log/app/*.log",)
    assert cfg.offsets_file == "/var/lib/errloop/errlog-offsets.json"
    assert cfg.poll_interval_s == pytest.approx(0.1)
    assert cfg.levels == ("error", "dpanic", "panic", "fatal")
    assert cfg.host == socket.gethostname()


def test_sample_conf_commented_defaults_are_the_real_defaults(tmp_path: Path) -> None:
    """Uncommenting every `# key = value` line of sample.conf must change nothing."""
    sample = PKG.joinpath("sample.conf").read_text(encoding="utf-8")
    uncommented = "\n".join(
        line.replace("  # ", "  ", 1) if line.startswith("  # ") and " = " in line else line
        for line in sample.splitlines()
        if "in_app_prefixes" not in line  # an example, not a default
    )
    assert load_config(write(tmp_path, uncommented)) == load_config(write(tmp_path, sample))


def test_telegraf_snippet() -> None:
    doc = tomllib.loads(PKG.joinpath("telegraf.conf").read_text(encoding="utf-8"))
    (execd,) = doc["inputs"]["execd"]
    assert execd["command"] == ["errloop", "telegraf", "errlog", "--config", "/etc/errloop/errlog.toml"]
    assert execd["signal"] == "none"
    assert execd["data_format"] == "influx"


def test_all_keys(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
            [[inputs.errlog]]
            files = "/a/*.log"
            from_beginning = true
            poll_interval = "250ms"
            offsets_file = "/tmp/o.json"
            max_line_bytes = 1000
            levels = ["ERROR", "warn"]
            formats = ["zap_json"]
            service = "svc"
            env = "prod"
            host = "h1"
            in_app_prefixes = ["github.com/acme/"]
            stats_interval = 30
            keep_raw = true
            fingerprint_version = 1
            max_batch_lines = 10
            discover_interval = "2s"
            rotate_wait = "1m"
            log_level = "debug"
            """,
        )
    )
    assert cfg == Config(
        files=("/a/*.log",),
        from_beginning=True,
        poll_interval_s=0.25,
        offsets_file="/tmp/o.json",
        max_line_bytes=1000,
        levels=("error", "warn"),
        formats=("zap_json",),
        service="svc",
        env="prod",
        host="h1",
        in_app_prefixes=("github.com/acme/",),
        stats_interval_s=30.0,
        keep_raw=True,
        fingerprint_version=1,
        max_batch_lines=10,
        discover_interval_s=2.0,
        rotate_wait_s=60.0,
        log_level="debug",
    )


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        ({}, "files: give at least one"),
        ({"files": []}, "files: give at least one"),
        ({"files": [1]}, "files: expected a list of strings"),
        ({"files": ["a"], "poll_intervall": "1s"}, "poll_intervall: unknown key"),
        ({"files": ["a"], "poll_interval": "soon"}, "poll_interval: expected a duration"),
        ({"files": ["a"], "poll_interval": "0s"}, "poll_interval: must be at least"),
        ({"files": ["a"], "max_line_bytes": 10}, "max_line_bytes: expected an integer >= 256"),
        ({"files": ["a"], "max_line_bytes": True}, "max_line_bytes: expected an integer"),
        ({"files": ["a"], "from_beginning": "yes"}, "from_beginning: expected true or false"),
        ({"files": ["a"], "formats": ["xml"]}, "formats: unknown format 'xml'"),
        ({"files": ["a"], "fingerprint_version": 9}, "fingerprint_version: known versions"),
        ({"files": ["a"], "log_level": "loud"}, "log_level: one of"),
        ({"files": ["a"], "env": 3}, "env: expected a string"),
    ],
)
def test_mistakes_are_named(block: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        from_mapping(block, "f.toml")
    assert str(info.value).startswith("f.toml: ")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("files = ['a']", "exactly one [[inputs.errlog]]"),
        ("[[inputs.errlog]]\nfiles=['a']\n[[inputs.errlog]]\nfiles=['b']", "exactly one"),
        ("[[inputs.errlog]]\nfiles=['a']\n[[inputs.tail]]\nfiles=['b']", "only [[inputs.errlog]]"),
        ("[[inputs.errlog]\n", "not valid TOML"),
    ],
)
def test_file_shape(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_parse_duration() -> None:
    assert parse_duration("100ms") == pytest.approx(0.1)
    assert parse_duration("1m30s") == 90.0
    assert parse_duration(2) == 2.0
    for bad in ("", "10", "1x", True, None):
        with pytest.raises(ValueError):
            parse_duration(bad)
