"""Test-only UDF handlers, run with the real runtime by udf_wire.handler_command(NAME)."""

from __future__ import annotations

import json
import sys
import time

from errloop.udf.agent import Edge, Handler, Info, InitError, Options, OptionSpec, ValueType, udf_pb2


class SlowHandler(Handler):
    """Sleeps ``.delay()`` per point (default 0.5 s), then passes it through."""

    INFO = Info(Edge.STREAM, Edge.STREAM, (OptionSpec("delay", (ValueType.DURATION,), default=500_000_000),))

    @classmethod
    def info(cls) -> Info:
        return cls.INFO

    def init(self, options: Options) -> None:
        self.delay_s = (options.get_duration("delay") or 0) / 1e9

    def point(self, point: udf_pb2.Point) -> None:
        time.sleep(getattr(self, "delay_s", 0.5))
        self.emitter.point(point)


class FlakyHandler(Handler):
    """Raises on points tagged boom=yes, prints to stdout on every point, passes the rest."""

    @classmethod
    def info(cls) -> Info:
        return Info(Edge.STREAM, Edge.STREAM)

    def init(self, options: Options) -> None:
        print("stray print from init")  # must land on stderr, not in the protocol

    def point(self, point: udf_pb2.Point) -> None:
        print(f"stray print for point {point.time}")
        sys.stdout.write("stray write\n")
        if point.tags.get("boom") == "yes":
            raise RuntimeError(f"boom at {point.time}")
        self.emitter.point(point)


class CountingHandler(Handler):
    """Counts points; emits each with field n = running count; snapshots the count.

    restore(b"explode") raises (the runtime must start a fresh, re-initialised handler);
    snapshot raises once the count reaches .fail_snapshot_at(INT).
    """

    INFO = Info(
        Edge.STREAM,
        Edge.STREAM,
        (
            OptionSpec("start", (ValueType.INT,), default=0),
            OptionSpec("fail_snapshot_at", (ValueType.INT,)),
        ),
    )

    @classmethod
    def info(cls) -> Info:
        return cls.INFO

    def init(self, options: Options) -> None:
        self.count = options.get_int("start") or 0
        self.fail_at = options.get_int("fail_snapshot_at")

    def snapshot(self) -> bytes:
        if self.fail_at is not None and self.count >= self.fail_at:
            raise RuntimeError("snapshot exploded")
        return json.dumps({"version": 1, "count": self.count}).encode()

    def restore(self, data: bytes) -> None:
        if data == b"explode":
            self.count = -1000  # a half-restored state the runtime must throw away
            raise ValueError("cannot restore this")
        doc = json.loads(data)
        if doc.get("version") == 1:
            self.count = doc["count"]

    def point(self, point: udf_pb2.Point) -> None:
        self.count += 1
        point.fieldsInt["n"] = self.count
        self.emitter.point(point)


class PickyHandler(Handler):
    """Every option type, a required one, a repeatable one; init can refuse or crash."""

    INFO = Info(
        Edge.STREAM,
        Edge.BATCH,
        (
            OptionSpec("field", (ValueType.STRING,), required=True),
            OptionSpec("threshold", (ValueType.DOUBLE,)),
            OptionSpec("size", (ValueType.INT,)),
            OptionSpec("enabled", (ValueType.BOOL,)),
            OptionSpec("period", (ValueType.DURATION,)),
            OptionSpec("pair", (ValueType.STRING, ValueType.INT), repeatable=True),
        ),
    )

    @classmethod
    def info(cls) -> Info:
        return cls.INFO

    def init(self, options: Options) -> None:
        if options.get_str("field") == "refuse":
            raise InitError("field 'refuse' is not allowed")
        if options.get_str("field") == "crash":
            raise KeyError("crash")
