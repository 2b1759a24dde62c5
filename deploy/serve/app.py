"""errloop serve: the HTTP server that closes the loop (stdlib ``ThreadingHTTPServer``).

Endpoints: ``POST /api/v1/alerts`` (Kapacitor's alert event JSON), ``GET
/api/v1/events/{event_id}/trace``, ``GET /healthz``. :class:`Server` runs in-process (tests,
demo); :func:`main` is the ``errloop serve`` command.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import threading
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from errloop.deploy.serve.actions import VIA_POST
from errloop.deploy.serve.catchup import CatchUp, CatchUpResult, WatermarkFile
from errloop.deploy.serve.csvlog import ClosedLoopCsv
from errloop.deploy.serve.influx import ActionStore, InfluxError, InfluxStore, redact
from errloop.deploy.serve.ledger import Ledger
from errloop.deploy.serve.model import (
    MAX_BODY,
    AlertEvent,
    AlertFormatError,
    format_rfc3339_nano,
    parse_alert,
    valid_event_id,
)
from errloop.deploy.serve.recorder import Recorder, RecordError
from errloop.deploy.serve.trace import EventNotFound, build_trace
from errloop.deploy.serve.webhook import WebhookNotifier, safe_url
from errloop.rules import contract

log = logging.getLogger("errloop.serve")

ALERTS_PATH = "/api/v1/alerts"
HEALTH_PATH = "/healthz"
TRACE_PATH = re.compile(r"/api/v1/events/([^/]*)/trace")
S = 1_000_000_000

JSON = dict[str, Any]


def _printable(text: str, limit: int = 120) -> str:
    """Request-derived text fit for one log line: control characters escaped, length capped."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: limit * 2])
    return out[:limit]


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``errloop serve`` can be told."""

    host: str = "127.0.0.1"
    port: int = 9100  # 0: any free port (tests)
    influx_url: str = "http://127.0.0.1:8086"
    db: str = contract.DATABASE
    rp: str = contract.RETENTION_POLICY
    csv_path: Path = Path("/tmp/errloop-closed.csv")
    state_dir: Path | None = None  # default: the CSV's folder
    catchup_interval: float = 2.0  # seconds
    catchup_overlap: float = 60.0  # seconds re-read before the watermark
    catchup_lookback: float = 3600.0  # seconds read back on the very first start (no state file)
    webhook: str | None = None  # optional URL the notify action POSTs to
    max_body: int = MAX_BODY

    @property
    def state_path(self) -> Path:
        """The watermark file: ``<state dir>/<csv name>.state.json``."""
        folder = self.state_dir if self.state_dir is not None else self.csv_path.parent
        return folder / f"{self.csv_path.name}.state.json"


@dataclass
class Counters:
    """Thread-safe named counters."""

    values: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, n: int = 1) -> None:
        """Add n to a counter."""
        if n:
            with self.lock:
                self.values[name] = self.values.get(name, 0) + n

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter."""
        with self.lock:
            return dict(sorted(self.values.items()))


class Server:
    """errloop serve in-process: ``start()`` runs it in threads, ``stop()`` ends them, ``.url``."""

    def __init__(self, config: ServeConfig, store: ActionStore | None = None) -> None:
        self.config = config
        self.store: ActionStore = store if store is not None else InfluxStore(config.influx_url, config.db, config.rp)
        self.counters = Counters()
        self.ledger = Ledger()
        self.csv = ClosedLoopCsv(config.csv_path)
        self.webhook = WebhookNotifier(config.webhook) if config.webhook else None
        self.recorder = Recorder(self.store, self.csv, self.ledger, notify=self._notify if self.webhook else None)
        self.catchup = CatchUp(
            self.store,
            self.recorder,
            self.ledger,
            self.csv,
            WatermarkFile(config.state_path),
            overlap_ns=int(config.catchup_overlap * S),
            lookback_ns=int(config.catchup_lookback * S),
        )
        self.last_error = ""
        self._http: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL the server listens on (after start)."""
        if self._http is None:
            raise RuntimeError("server not started")
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}" if isinstance(host, str) else f"http://{host.decode()}:{port}"

    def start(self) -> None:
        """Check the CSV, load the ledger (if InfluxDB answers), listen, start the catch-up loop."""
        self.csv.check()
        self._try_bootstrap()
        self._http = _HTTPServer((self.config.host, self.config.port), _Handler, self)
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._http.serve_forever, args=(0.05,), name="errloop-serve-http", daemon=True),
            threading.Thread(target=self._catchup_loop, name="errloop-serve-catchup", daemon=True),
        ]
        for t in self._threads:
            t.start()
        log.info(
            "listening on %s (InfluxDB %s, db %s, CSV %s)",
            self.url,
            redact(self.config.influx_url),
            self.config.db,
            self.config.csv_path,
        )

    def stop(self) -> None:
        """Stop serving and the catch-up loop; deliver queued webhooks; close clients."""
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for t in self._threads:
            t.join(10)
        if self.webhook is not None:
            self.webhook.stop()
        self.store.close()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- work -----------------------------------------------------------------------------

    def _error(self, text: str) -> None:
        if text != self.last_error:
            log.warning("%s", text)
        self.last_error = text

    def _try_bootstrap(self) -> bool:
        if self.catchup.ready:
            return True
        try:
            seed = self.catchup.bootstrap()
        except InfluxError as exc:
            self._error(f"not ready, ledger not loaded: {exc}")
            return False
        log.info(
            "ledger loaded: %d recorded, %d pending, %d csv_ns restored",
            len(seed.done),
            len(seed.pending),
            len(seed.repairs),
        )
        self.last_error = ""
        return True

    def catch_up_now(self) -> CatchUpResult:
        """One catch-up pass, now (the loop does the same every interval)."""
        res = self.catchup.run_once()
        self.counters.add("catchup_runs")
        self.counters.add("recorded_catchup", len(res.recorded))
        self.counters.add("recovered_catchup", len(res.recovered))
        self.counters.add("duplicates_catchup", res.duplicates)
        self.counters.add("rejected_points", len(res.rejected))
        if res.recorded or res.recovered:
            log.info(
                "catch-up recorded %d event(s), %d recovery(ies) missed by POST", len(res.recorded), len(res.recovered)
            )
        if res.rejected:
            log.warning(
                "catch-up skipped %d errloop_alerts point(s), first: %s", len(res.rejected), _printable(res.rejected[0])
            )
        return res

    def _catchup_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._try_bootstrap():
                    self.catch_up_now()
                    self.last_error = ""
            except (InfluxError, RecordError, OSError) as exc:
                self.counters.add("catchup_errors")
                self._error(f"catch-up failed, will retry: {exc}")
            except Exception as exc:  # the loop must survive anything
                self.counters.add("catchup_errors")
                log.exception("catch-up failed unexpectedly: %s", type(exc).__name__)
            self._stop.wait(self.config.catchup_interval)

    def _notify(self, ev: AlertEvent) -> None:
        if self.webhook is None:
            return
        base = self.url if self._http is not None else ""
        self.webhook.submit(
            {
                "action": self.recorder.action,
                "event_id": ev.event_id,
                "policy": ev.policy,
                "service": ev.text("service"),
                "alert_id": ev.alert_id,
                "level": ev.level,
                "message": ev.message,
                "error_type": ev.text("error_type"),
                "category": ev.text("category"),
                "suggestion": ev.text("suggestion"),
                "trace": f"{base}/api/v1/events/{ev.event_id}/trace",
            }
        )

    def handle_alert(self, body: bytes) -> tuple[int, JSON]:
        """POST /api/v1/alerts: record the alert's events, answer only once they are recorded."""
        self.counters.add("alerts")
        try:
            alert = parse_alert(body)
        except AlertFormatError as exc:
            self.counters.add("bad_requests")
            return 400, {"error": str(exc)}
        if alert.rejected:
            self.counters.add("rejected_rows", len(alert.rejected))
            log.warning(
                "alert %s: %d row(s) not usable, first: %s",
                _printable(alert.alert_id),
                len(alert.rejected),
                _printable(alert.rejected[0]),
            )
        if not self._try_bootstrap():
            self.counters.add("not_ready")
            return 503, {"error": f"not ready: {self.last_error}", "note": "the catch-up path will record it later"}
        try:
            res = self.recorder.record(alert.events, VIA_POST)
        except RecordError as exc:
            self.counters.add("record_errors")
            self._error(f"alert {_printable(alert.alert_id)} not recorded: {exc}")
            return 503, {"error": f"not recorded: {exc}", "note": "the catch-up path will retry"}
        self.counters.add("recorded_post", len(res.recorded))
        self.counters.add("recovered_post", len(res.recovered))
        self.counters.add("duplicates_post", len(res.duplicates))
        self.counters.add("mark_failed", res.mark_failed)
        return 200, {
            "alert_id": alert.alert_id,
            "level": alert.level,
            "recorded": res.recorded,
            "recovered": res.recovered,
            "duplicates": res.duplicates,
            "rejected": list(alert.rejected),
        }

    def handle_trace(self, event_id: str) -> tuple[int, JSON]:
        """GET /api/v1/events/{event_id}/trace."""
        self.counters.add("traces")
        if not valid_event_id(event_id):
            self.counters.add("bad_requests")
            return 400, {"error": "malformed event id: must be 1 to 64 of A-Z a-z 0-9 _ -"}
        try:
            return 200, build_trace(event_id, self.store.event_rows(event_id))
        except EventNotFound:
            return 404, {"error": f"unknown event {event_id}"}
        except InfluxError as exc:
            return 502, {"error": str(exc)}

    def health(self) -> tuple[int, JSON]:
        """GET /healthz: 200 once the ledger is loaded, else 503."""
        ready = self.catchup.ready
        wm = self.catchup.watermark
        body: JSON = {
            "status": "ok" if ready else "starting",
            "ready": ready,
            "watermark": format_rfc3339_nano(wm) if wm else None,
            "ledger": self.ledger.counts(),
            "counters": self.counters.snapshot() | (self.webhook.counters if self.webhook else {}),
        }
        if self.last_error:
            body["last_error"] = self.last_error
        return (200 if ready else 503), body


# ---------------------------------------------------------------------------------------------
# HTTP


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: Server) -> None:
        self.app = app
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that drops its keep-alive connection (Kapacitor does) is not an error
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        log.exception("error while handling a request from %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "errloop-serve"
    sys_version = ""
    timeout = 30  # per-connection socket timeout: a stalled client cannot hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, payload: JSON, close: bool = False) -> None:
        data = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _path(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    def _bad(self, msg: str, close: bool = False) -> None:
        self.server.app.counters.add("bad_requests")
        self._send(400, {"error": msg}, close=close)

    def do_GET(self) -> None:
        app = self.server.app
        path = self._path()
        try:
            if path == HEALTH_PATH:
                self._send(*app.health())
                return
            m = TRACE_PATH.fullmatch(path)
            if m is not None:
                self._send(*app.handle_trace(urllib.parse.unquote(m.group(1))))
                return
            if path == ALERTS_PATH:
                self._send(405, {"error": "use POST"})
                return
            self._send(404, {"error": "no such endpoint"})
        except Exception as exc:
            self._internal(exc)

    def do_POST(self) -> None:
        app = self.server.app
        if self._path() != ALERTS_PATH:
            self._send(404, {"error": "no such endpoint"}, close=True)
            return
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._bad("chunked bodies are not accepted: send Content-Length", close=True)
            return
        raw = self.headers.get("Content-Length")
        if raw is None or not raw.strip().isdigit():
            self._bad("Content-Length required", close=True)
            return
        length = int(raw)
        if length > app.config.max_body:
            self._bad(f"body too large: {length} bytes > {app.config.max_body}", close=True)
            return
        body = self.rfile.read(length)
        if len(body) < length:
            self._bad("body shorter than Content-Length", close=True)
            return
        try:
            self._send(*app.handle_alert(body))
        except Exception as exc:
            self._internal(exc)

    def _other(self) -> None:
        self._send(405, {"error": f"method {self.command} not allowed"}, close=True)

    do_PUT = do_DELETE = do_PATCH = _other

    def _internal(self, exc: Exception) -> None:
        self.server.app.counters.add("internal_errors")
        log.exception("internal error on %s %s: %s", self.command, self._path(), type(exc).__name__)
        try:
            self._send(500, {"error": "internal error"}, close=True)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# command line

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")


def parse_duration(text: str) -> float:
    """``"2s"``, ``"500ms"``, ``"1m"``, ``"1h"`` or plain seconds -> seconds (> 0)."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a duration: {text!r} (examples: 2s, 500ms, 1m)")
    value = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if value <= 0:
        raise ValueError(f"duration must be > 0: {text!r}")
    return value


def _duration_arg(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``errloop serve`` options."""
    p = argparse.ArgumentParser(
        prog="errloop serve", description="errloop's action ledger, closed-loop CSV and trace API"
    )
    d = ServeConfig()
    p.add_argument("--host", default=d.host, help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=d.port, help="port (default %(default)s)")
    p.add_argument("--influx-url", default=d.influx_url, help="InfluxDB 1.8+ base URL (default %(default)s)")
    p.add_argument("--db", default=d.db, help="database (default %(default)s)")
    p.add_argument("--rp", default=d.rp, help="retention policy for action points (default %(default)s)")
    p.add_argument("--csv", type=Path, default=d.csv_path, help="closed-loop CSV file (default %(default)s)")
    p.add_argument(
        "--state-dir", type=Path, default=None, help="where the catch-up watermark lives (default: the CSV's folder)"
    )
    p.add_argument(
        "--catchup-interval",
        type=_duration_arg,
        default=d.catchup_interval,
        metavar="DURATION",
        help="how often errloop_alerts is read back (default 2s)",
    )
    p.add_argument(
        "--catchup-overlap",
        type=_duration_arg,
        default=d.catchup_overlap,
        metavar="DURATION",
        help="how far before the watermark each pass re-reads (default 60s)",
    )
    p.add_argument(
        "--catchup-lookback",
        type=_duration_arg,
        default=d.catchup_lookback,
        metavar="DURATION",
        help="how far back the very first pass reads (default 1h)",
    )
    p.add_argument("--webhook", default=None, help="URL the notify action POSTs each recorded event to (optional)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return p


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """A ServeConfig from parsed options."""
    return ServeConfig(
        host=args.host,
        port=args.port,
        influx_url=args.influx_url,
        db=args.db,
        rp=args.rp,
        csv_path=args.csv,
        state_dir=args.state_dir,
        catchup_interval=args.catchup_interval,
        catchup_overlap=args.catchup_overlap,
        catchup_lookback=args.catchup_lookback,
        webhook=args.webhook,
    )


def serve(config: ServeConfig, stop: threading.Event | None = None) -> int:
    """Run errloop serve until SIGINT/SIGTERM (or ``stop`` is set); returns an exit status."""
    stop = stop or threading.Event()
    server = Server(config)
    try:
        server.start()
    except Exception as exc:
        log.error("cannot start: %s", redact(str(exc)))
        server.store.close()
        return 1
    if config.webhook:
        log.info("notify webhook: %s", safe_url(config.webhook))
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``errloop serve`` entry point."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s errloop serve %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    log.propagate = False
    return serve(config_from_args(args))
