"""errloop_mirror: every point (and batch) goes out exactly as it came in."""

from __future__ import annotations

from errloop.udf.agent import Edge, Handler, Info


class MirrorHandler(Handler):
    """Pass-through: stream in, the same stream out; no options, no state."""

    INFO = Info(wants=Edge.STREAM, provides=Edge.STREAM, doc="Emits every point unchanged.")

    @classmethod
    def info(cls) -> Info:
        return cls.INFO

    # point/begin_batch/end_batch: the base class already passes everything through
