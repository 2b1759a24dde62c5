"""Start and stop a private TICK stack on loopback: InfluxDB, Kapacitor, Telegraf.

Each program gets its own data directory under the stack's state directory, its own
ports (away from the defaults, so a user's real stack is not disturbed) and its own log
file. Process ids are kept in ``<state>/pids/`` so ``errloop stack down`` in another
shell finds them. Kapacitor's subscription in InfluxDB is dropped on ``down`` and any
leftover one on ``up``: a stale subscription would post to a Kapacitor that is gone
(TICK-STACK.md, pitfalls).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from errloop.deploy.stack import build as stack_build
from errloop.rules import contract

PROGRAMS = ("influxd", "kapacitord", "telegraf")


def default_state_dir() -> Path:
    env = os.environ.get("ERRLOOP_STACK_DIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return base / "errloop" / "stack"


@dataclass(frozen=True)
class StackConfig:
    """Where a stack lives and which ports it answers on."""

    state_dir: Path = field(default_factory=default_state_dir)
    influx_port: int = 18086
    influx_rpc_port: int = 18088
    kapacitor_port: int = 19092
    # Log files (globs) the errlog plugin tails; default: <state>/applogs/*.log
    log_globs: tuple[str, ...] = ()
    python: str = sys.executable  # runs the UDFs and the Telegraf plugin
    with_telegraf: bool = True
    # appended to kapacitord.conf, e.g. the [[httppost]] endpoints of the policies to deploy
    kapacitor_extra: str = ""
    # how often Kapacitor snapshots task state (UDFs included); a Go duration
    snapshot_interval: str = "10s"

    @property
    def influx_url(self) -> str:
        return f"http://127.0.0.1:{self.influx_port}"

    @property
    def kapacitor_url(self) -> str:
        return f"http://127.0.0.1:{self.kapacitor_port}"

    @property
    def applog_dir(self) -> Path:
        return self.state_dir / "applogs"

    @property
    def globs(self) -> tuple[str, ...]:
        return self.log_globs or (str(self.applog_dir / "*.log"),)

    @classmethod
    def private(cls, state_dir: Path, **settings: Any) -> StackConfig:
        """A stack in ``state_dir`` on free loopback ports (tests, benchmarks): never clashes with another."""
        return cls(
            state_dir=state_dir,
            influx_port=free_port(),
            influx_rpc_port=free_port(),
            kapacitor_port=free_port(),
            **settings,
        )

    def log_path(self, program: str) -> Path:
        return self.state_dir / "logs" / f"{program}.log"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class StackError(RuntimeError):
    pass


# ---------------------------------------------------------------- configuration files


def influxd_conf(cfg: StackConfig) -> str:
    d = cfg.state_dir / "influxdb"
    return f"""reporting-disabled = true
bind-address = "127.0.0.1:{cfg.influx_rpc_port}"

[meta]
  dir = "{d / "meta"}"

[data]
  dir = "{d / "data"}"
  wal-dir = "{d / "wal"}"
  query-log-enabled = false

[http]
  bind-address = "127.0.0.1:{cfg.influx_port}"
  flux-enabled = true
  log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = true
"""


def kapacitord_conf(cfg: StackConfig, udfs: Mapping[str, list[str]]) -> str:
    d = cfg.state_dir / "kapacitor"
    udf_sections = "".join(
        f"""
  [udf.functions.{name}]
    prog = {json.dumps(argv[0])}
    args = {json.dumps(argv[1:])}
    timeout = "10s"
    [udf.functions.{name}.env]
      PYTHONUNBUFFERED = "1"
"""
        for name, argv in udfs.items()
    )
    return f"""hostname = "127.0.0.1"
data_dir = "{d}"
# errloop deploy installs WeCom-style [[httppost]] endpoints through the config API.
skip-config-overrides = false
default-retention-policy = "autogen"

[http]
  bind-address = "127.0.0.1:{cfg.kapacitor_port}"
  log-enabled = false

[replay]
  dir = "{d / "replay"}"

[storage]
  boltdb = "{d / "kapacitor.db"}"

[task]
  dir = "{d / "tasks"}"
  snapshot-interval = "{cfg.snapshot_interval}"

[load]
  enabled = false

[reporting]
  enabled = false

[stats]
  enabled = false

[logging]
  file = "STDERR"
  level = "INFO"

[[influxdb]]
  enabled = true
  default = true
  name = "errloop-local"
  urls = ["{cfg.influx_url}"]
  subscription-protocol = "http"
  subscriptions-sync-interval = "5s"
  startup-timeout = "1m"
  [influxdb.excluded-subscriptions]
    _internal = ["monitor"]

[udf]
[udf.functions]
{udf_sections}
{cfg.kapacitor_extra}"""


def errlog_conf(cfg: StackConfig) -> str:
    return f"""# errlog plugin configuration of the local errloop stack (generated by errloop stack up)
[[inputs.errlog]]
  files = {json.dumps(list(cfg.globs))}
  from_beginning = true
  poll_interval = "50ms"
  env = "local"
  offsets_file = {json.dumps(str(cfg.state_dir / "telegraf" / "errlog-offsets.json"))}
  stats_interval = "10s"
"""


def telegraf_conf(cfg: StackConfig) -> str:
    errlog_cfg = cfg.state_dir / "telegraf" / "errlog.toml"
    cmd = [cfg.python, "-m", "errloop.telegraf.errlog.plugin", "--config", str(errlog_cfg)]
    return f"""[agent]
  interval = "10s"
  flush_interval = "100ms"
  flush_jitter = "0s"
  metric_batch_size = 5000
  metric_buffer_limit = 100000
  omit_hostname = true
  quiet = false

[[inputs.execd]]
  command = {json.dumps(cmd)}
  signal = "none"
  restart_delay = "1s"
  data_format = "influx"

[[outputs.influxdb]]
  urls = ["{cfg.influx_url}"]
  database = "{contract.DATABASE}"
  skip_database_creation = true
  timeout = "5s"
"""


def udf_commands(python: str) -> dict[str, list[str]]:
    """The ``[udf.functions.*]`` programs: every errloop UDF, run by this Python."""
    from errloop.udf import registry

    return {name: [python, "-m", "errloop.udf", name] for name in registry.NAMES}


# ---------------------------------------------------------------- processes


def _pid_file(cfg: StackConfig, program: str) -> Path:
    return cfg.state_dir / "pids" / f"{program}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def running_pid(cfg: StackConfig, program: str) -> int | None:
    try:
        pid = int(_pid_file(cfg, program).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _spawn(cfg: StackConfig, program: str, argv: list[str], env: Mapping[str, str] | None = None) -> int:
    log = cfg.log_path(program)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {' '.join(argv)}\n".encode())
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cfg.state_dir,
            env={**os.environ, **(env or {})},
        )
    pf = _pid_file(cfg, program)
    pf.parent.mkdir(parents=True, exist_ok=True)
    pf.write_text(str(proc.pid))
    return proc.pid


def _wait_ping(url: str, program: str, cfg: StackConfig, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 204:
                return
        except httpx.HTTPError:
            pass
        if running_pid(cfg, program) is None:
            raise StackError(f"{program} exited during start-up; its log:\n{tail(cfg.log_path(program))}")
        time.sleep(0.1)
    raise StackError(f"{program} did not answer {url} within {timeout:.0f} s; log:\n{tail(cfg.log_path(program))}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def influx_query(cfg: StackConfig, q: str, method: str = "GET") -> dict[str, object]:
    resp = httpx.request(method, f"{cfg.influx_url}/query", params={"q": q}, timeout=10.0)
    resp.raise_for_status()
    body: dict[str, object] = resp.json()
    return body


def drop_subscriptions(cfg: StackConfig) -> list[str]:
    """Drop every subscription of the stack's own InfluxDB; return their names."""
    body = influx_query(cfg, "SHOW SUBSCRIPTIONS")
    dropped = []
    for result in body.get("results", []):  # type: ignore[attr-defined]
        for series in result.get("series", []):
            db = series["name"]
            cols = series["columns"]
            for row in series.get("values", []):
                sub = dict(zip(cols, row, strict=False))
                name, rp = sub["name"], sub["retention_policy"]
                influx_query(cfg, f'DROP SUBSCRIPTION "{name}" ON "{db}"."{rp}"', method="POST")
                dropped.append(f"{db}.{rp}:{name}")
    return dropped


def up(cfg: StackConfig, say: Callable[[str], None] = print) -> StackConfig:
    """Build if needed, then start whatever part of the stack is not running."""
    bins = stack_build.build(say=say) if not stack_build.is_built() else stack_build.binaries()
    for sub in ("influxdb", "kapacitor", "telegraf", "logs", "pids"):
        (cfg.state_dir / sub).mkdir(parents=True, exist_ok=True)
    cfg.applog_dir.mkdir(parents=True, exist_ok=True)

    if running_pid(cfg, "influxd") is None:
        conf = cfg.state_dir / "influxdb" / "influxd.conf"
        conf.write_text(influxd_conf(cfg))
        _spawn(cfg, "influxd", [str(bins.influxd), "-config", str(conf)])
        _wait_ping(f"{cfg.influx_url}/ping", "influxd", cfg)
        say(f"  influxd    up  {cfg.influx_url}")
    # The database must exist before Kapacitor starts, or its subscription comes late.
    influx_query(cfg, f'CREATE DATABASE "{contract.DATABASE}"', method="POST")

    if running_pid(cfg, "kapacitord") is None:
        gone = drop_subscriptions(cfg)
        if gone:
            say(f"  dropped stale subscriptions: {', '.join(gone)}")
        conf = cfg.state_dir / "kapacitor" / "kapacitord.conf"
        conf.write_text(kapacitord_conf(cfg, udf_commands(cfg.python)))
        _spawn(cfg, "kapacitord", [str(bins.kapacitord), "-config", str(conf)])
        _wait_ping(f"{cfg.kapacitor_url}/kapacitor/v1/ping", "kapacitord", cfg)
        _wait_subscription(cfg)
        say(f"  kapacitord up  {cfg.kapacitor_url}")

    if cfg.with_telegraf and running_pid(cfg, "telegraf") is None:
        (cfg.state_dir / "telegraf" / "errlog.toml").write_text(errlog_conf(cfg))
        conf = cfg.state_dir / "telegraf" / "telegraf.conf"
        conf.write_text(telegraf_conf(cfg))
        _spawn(cfg, "telegraf", [str(bins.telegraf), "--config", str(conf)])
        _wait_telegraf(cfg)
        say(f"  telegraf   up  tailing {', '.join(cfg.globs)}")
    (cfg.state_dir / "stack.json").write_text(
        json.dumps({"influx_url": cfg.influx_url, "kapacitor_url": cfg.kapacitor_url, "globs": list(cfg.globs)})
    )
    return cfg


def _wait_subscription(cfg: StackConfig, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = json.dumps(influx_query(cfg, "SHOW SUBSCRIPTIONS"))
        if f":{cfg.kapacitor_port}" in body:
            return
        time.sleep(0.2)
    raise StackError("Kapacitor's subscription did not appear in InfluxDB")


def _wait_telegraf(cfg: StackConfig, timeout: float = 30.0) -> None:
    """Telegraf has no ping endpoint of its own here: wait for its 'Loaded outputs' line."""
    deadline = time.monotonic() + timeout
    log = cfg.log_path("telegraf")
    while time.monotonic() < deadline:
        if running_pid(cfg, "telegraf") is None:
            raise StackError(f"telegraf exited during start-up; its log:\n{tail(log)}")
        if "Connected [outputs.influxdb]" in tail(log, 200) or "Starting Telegraf" in tail(log, 200):
            return
        time.sleep(0.1)
    raise StackError(f"telegraf did not start within {timeout:.0f} s; log:\n{tail(log)}")


def stop(cfg: StackConfig, program: str, timeout: float = 20.0) -> bool:
    """Stop one program of the stack (SIGTERM, then SIGKILL after ``timeout``); False if it was not running."""
    pid = running_pid(cfg, program)
    _pid_file(cfg, program).unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, os.WNOHANG)  # reap our own child, if it is one
    except ChildProcessError:
        pass
    return True


def down(cfg: StackConfig, say: Callable[[str], None] = print, purge: bool = False) -> None:
    """Stop Telegraf, Kapacitor, then InfluxDB (after dropping Kapacitor's subscription)."""
    for program in ("telegraf", "kapacitord"):
        if stop(cfg, program):
            say(f"  {program} stopped")
    if running_pid(cfg, "influxd") is not None:
        try:
            drop_subscriptions(cfg)
        except httpx.HTTPError as e:
            say(f"  could not drop subscriptions: {e}")
    if stop(cfg, "influxd"):
        say("  influxd stopped")
    if purge and cfg.state_dir.exists():
        shutil.rmtree(cfg.state_dir)
        say(f"  removed {cfg.state_dir}")


def status(cfg: StackConfig) -> dict[str, str]:
    """One line per program: running (pid, ping) or stopped."""
    pings = {
        "influxd": f"{cfg.influx_url}/ping",
        "kapacitord": f"{cfg.kapacitor_url}/kapacitor/v1/ping",
        "telegraf": "",
    }
    out = {}
    for program in PROGRAMS:
        pid = running_pid(cfg, program)
        if pid is None:
            out[program] = "stopped"
            continue
        state = f"running (pid {pid})"
        if pings[program]:
            try:
                ok = httpx.get(pings[program], timeout=1.0).status_code == 204
            except httpx.HTTPError:
                ok = False
            state += f", {pings[program]} {'answers' if ok else 'does not answer'}"
        out[program] = state
    return out
