"""The errlog input plugin: tail Go logs, write error events as line protocol for Telegraf's execd.

``errloop telegraf errlog --config FILE`` runs :func:`main`; so does
``python -m errloop.telegraf.errlog.plugin --config FILE``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence

from errloop.rules import contract
from errloop.telegraf import lineproto
from errloop.telegraf.errlog.config import Config, ConfigError, load_config
from errloop.telegraf.errlog.container import Unwrapper
from errloop.telegraf.errlog.group import Grouped, Grouper
from errloop.telegraf.errlog.merge import Outgoing, PanicMerger
from errloop.telegraf.errlog.normalise import Context, normalise_level, normalise_line
from errloop.telegraf.errlog.offsets import OffsetStore
from errloop.telegraf.errlog.points import SeriesClock, event_line, stats_line
from errloop.telegraf.errlog.stats import IngestCounters
from errloop.telegraf.errlog.tailer import Tailer
from errloop.telegraf.shim import run, setup_logging

log = logging.getLogger("errloop.errlog")

_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
_STATS_TAGS = ("host", "env")
assert set(_STATS_TAGS) <= set(contract.EVENT_TAGS)


class ErrlogPlugin:
    """An :class:`errloop.telegraf.shim.InputPlugin`: each ``gather`` reads what is new and returns its lines."""

    def __init__(
        self,
        config: Config,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.wall_ns = wall_ns
        self.monotonic = monotonic
        self.tailer = Tailer(
            config.files,
            from_beginning=config.from_beginning,
            max_line_bytes=config.max_line_bytes,
            store=OffsetStore(config.offsets_file) if config.offsets_file else None,
            max_batch_lines=config.max_batch_lines,
            discover_interval_s=config.discover_interval_s,
            rotate_wait_s=config.rotate_wait_s,
            clock=monotonic,
        )
        self.unwrapper = Unwrapper()
        self.grouper = Grouper(idle_s=config.multiline_wait_s)
        self.merger = PanicMerger(idle_s=config.multiline_wait_s)
        self.counters = IngestCounters()
        self.series = SeriesClock()
        self._contexts: dict[str, Context] = {}
        self._next_stats = monotonic() + config.stats_interval_s
        self._tailer_errors = 0
        self._logged_errors = 0
        self.stats_tags = {k: v for k, v in (("host", config.host), ("env", config.env)) if v}

    def _context(self, source: str) -> Context:
        ctx = self._contexts.get(source)
        if ctx is None:
            if len(self._contexts) > 10_000:
                self._contexts.clear()
            c = self.config
            ctx = Context(
                source=source,
                service=c.service,
                env=c.env,
                host=c.host,
                in_app_prefixes=c.in_app_prefixes,
                levels=frozenset(normalise_level(lv) for lv in c.levels),
                formats=c.formats,
                keep_raw=c.keep_raw,
                fingerprint_version=c.fingerprint_version,
            )
            self._contexts[source] = ctx
        return ctx

    def _error(self, msg: str, *args: object) -> None:
        self.counters.add("errors")
        self._logged_errors += 1
        if self._logged_errors <= 20 or self._logged_errors % 1000 == 0:
            log.error(msg + " (error %d)", *args, self._logged_errors)

    def gather(self) -> list[str]:
        out: list[str] = []
        try:
            lines = self.tailer.poll()
        except Exception as exc:  # a tailer bug must not stop the plugin
            self._error("reading files failed: %s", exc)
            lines = []
        now_ns = self.wall_ns()
        now = self.monotonic()
        records: list[Grouped] = []
        for line in lines:
            self.counters.add("lines_read")
            if line.truncated:
                self.counters.add("truncated")
            try:
                for inner in self.unwrapper.push(line, now):
                    records.extend(self.grouper.push(inner.line, now, inner.time_ns, inner.service))
            except Exception as exc:  # a grouping bug must not lose the line: it goes on alone
                self._error("%s at byte %d: grouping failed: %s: %s", line.source, line.offset, type(exc).__name__, exc)
                records.append(Grouped(line.source, line.offset, line.data, 1, line.truncated))
        try:
            for inner in self.unwrapper.flush_idle(now, self.config.multiline_wait_s):
                records.extend(self.grouper.push(inner.line, now, inner.time_ns, inner.service))
            records.extend(self.grouper.flush_idle(now))
        except Exception as exc:
            self._error("flushing multi-line records failed: %s: %s", type(exc).__name__, exc)
        for rec in records:
            try:
                outcome = normalise_line(
                    rec.data,
                    ctx=self._context(rec.source),
                    offset=rec.offset,
                    ingested_ns=now_ns,
                    truncated=rec.truncated,
                    fallback_ns=rec.time_ns,
                    service_hint=rec.service,
                )
                if outcome.error:
                    self._error("%s at byte %d stored as unparsed: %s", rec.source, rec.offset, outcome.error)
                if outcome.event is None:
                    continue
                if outcome.unparsed:
                    self.counters.add("unparsed")
                ready = self.merger.push(Outgoing(outcome.event, outcome.time_ns, rec.source, rec.offset), now)
            except Exception as exc:
                self._error("%s at byte %d: %s: %s", rec.source, rec.offset, type(exc).__name__, exc)
                continue
            self._write(ready, out)
        try:
            busy = set(self.grouper.held()) | set(self.unwrapper.held())
            self._write(self.merger.flush_idle(now, busy), out)
        except Exception as exc:
            self._error("flushing held panic records failed: %s: %s", type(exc).__name__, exc)
        self.counters.values["merged"] = self.merger.merged
        self.counters.values["rotations"] = self.tailer.rotations
        if self.tailer.errors != self._tailer_errors:
            self.counters.add("errors", self.tailer.errors - self._tailer_errors)
            self._tailer_errors = self.tailer.errors
        if self.monotonic() >= self._next_stats:
            self._next_stats = self.monotonic() + self.config.stats_interval_s
            out.append(stats_line(self.counters.snapshot(), self.stats_tags, now_ns))
        return out

    def _write(self, events: list[Outgoing], out: list[str]) -> None:
        for ev in events:
            try:
                out.append(event_line(ev.event, ev.time_ns, self.series))
            except lineproto.LineProtocolError as exc:
                self._error("%s at byte %d: cannot write the event: %s", ev.source, ev.offset, exc)
                continue
            except Exception as exc:
                self._error("%s at byte %d: %s: %s", ev.source, ev.offset, type(exc).__name__, exc)
                continue
            self.counters.add("events")

    def committed(self) -> None:
        self.tailer.commit(hold=self.held())

    def held(self) -> dict[str, int]:
        """File → first offset of a record not yet sent (a partial container line, an open multi-line record,
        a panic-level record waiting for its dump)."""
        held = self.unwrapper.held()
        for stage in (self.grouper.held(), self.merger.held()):
            for source, offset in stage.items():
                held[source] = min(offset, held.get(source, offset))
        return held

    def close(self) -> None:
        self.tailer.close()


def main(config_path: str) -> int:
    """Run the plugin under Telegraf's execd until it stops us. 0 = clean stop, 2 = bad config, 1 = crash."""
    setup_logging()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    logging.getLogger().setLevel(_LOG_LEVELS[config.log_level])
    try:
        plugin = ErrlogPlugin(config)
        log.info("errlog started: files=%s host=%s", list(config.files), config.host)
        result = run(plugin, signal="none", interval_s=config.poll_interval_s)
    except Exception:
        log.exception("errlog crashed")
        return 1
    log.info(
        "errlog stopped (%s): %d lines written, counters %s", result.reason, result.lines, plugin.counters.snapshot()
    )
    return result.exit_code


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="errloop telegraf errlog", description=__doc__)
    parser.add_argument("--config", required=True, help="the plugin's TOML config (see sample.conf)")
    args = parser.parse_args(argv)
    return main(args.config)


if __name__ == "__main__":
    sys.exit(cli())
