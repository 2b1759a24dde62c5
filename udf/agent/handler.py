"""The base class of every errloop UDF.

A handler instance serves one UDF node of one task (one process, or one socket
connection). The runtime calls its methods from a single serving thread, in the order
Kapacitor sent the requests; the handler emits output through ``self.emitter`` (which may
also be used from other threads).

Defaults are the safe answer for each request, so a handler only writes what it needs:

=================  ==========================================================
``info()``         abstract: edge types and the option schema (:class:`Info`)
``init(options)``  accept (raise :class:`InitError` or any exception to refuse)
``snapshot()``     ``b""`` (Kapacitor then keeps its previous snapshot, if any)
``restore(data)``  accept; if it raises, the runtime starts the handler empty
``point(p)``       pass the point through unchanged
``point_bytes``    only with ``POINT_BYTES = True``: parse, then ``point``
``points_bytes``   only with ``POINT_BYTES = True``: ``point_bytes`` for each point of a run
``begin_batch``    pass through
``end_batch``      pass through
``close()``        nothing; called after the last request, before the final flush
=================  ==========================================================

Points handed to ``point()`` belong to the handler: each comes from a freshly parsed
request, so it may be edited in place and emitted.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import ClassVar

from errloop.udf.agent import udf_pb2
from errloop.udf.agent.options import Info, Options
from errloop.udf.agent.output import Emitter


class InitError(Exception):
    """Raised by ``Handler.init`` to refuse the options; the text goes to InitResponse.error."""


class Handler(abc.ABC):
    """One UDF node's logic. Subclasses define :meth:`info` and override what they need."""

    #: True: the runtime hands points to :meth:`point_bytes` unparsed (for handlers that
    #: parse, or only partly look at, points themselves); False: to :meth:`point`, parsed.
    POINT_BYTES: ClassVar[bool] = False

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self.counters = emitter.counters
        self.task_id = ""  # from the InitRequest, for log messages
        self.node_id = ""

    @classmethod
    @abc.abstractmethod
    def info(cls) -> Info:
        """Edge types and options; also answers Kapacitor's InfoRequest."""

    def init(self, options: Options) -> None:
        """Configure from validated options; raise to make the task fail with the message."""
        return None

    def snapshot(self) -> bytes:
        """State to persist (opaque bytes; version them). Empty means nothing to save."""
        return b""

    def restore(self, data: bytes) -> None:
        """Load a snapshot made by :meth:`snapshot`.

        Unknown versions should be ignored (start empty). If this raises, the runtime logs
        the error, replaces the handler by a fresh one initialised with the same options, and
        still answers success: a bad snapshot must not keep the task from running.
        """
        return None

    def point(self, point: udf_pb2.Point) -> None:
        """One data point (stream, or inside a batch)."""
        self.emitter.point(point)

    def point_bytes(self, payload: bytes) -> None:
        """One data point as its serialized ``Point`` (only called when :attr:`POINT_BYTES` is set).

        The default parses it and calls :meth:`point`. ``self.emitter.point_bytes`` sends a
        serialized Point; protobuf lets fields be appended to one (for a map entry or a scalar,
        the last occurrence wins), so ``payload + more`` is a valid edited point.
        """
        self.point(udf_pb2.Point.FromString(payload))

    def points_bytes(self, payloads: Iterator[bytes]) -> None:
        """A run of consecutive points, each as its serialized ``Point`` (with :attr:`POINT_BYTES`).

        The runtime hands over runs of points (at most its batch size) this way, so a handler
        can keep its per-point state in locals and emit a run in one write; the default calls
        :meth:`point_bytes` for each. Take the points one at a time from the iterator and
        have emitted (or be emitting) the output of every point taken before raising: if this
        raises, the point last taken is counted as failed (the first one left, when none was
        taken) and skipped, and the runtime calls again with the same iterator for the rest.
        The runtime's iterator runs over a list: ``copy.copy(payloads)`` is an independent
        iterator over the points not yet taken, to look ahead at them without taking any.
        """
        for payload in payloads:
            self.point_bytes(payload)

    def begin_batch(self, begin: udf_pb2.BeginBatch) -> None:
        """Start of a batch."""
        self.emitter.begin_batch(begin)

    def end_batch(self, end: udf_pb2.EndBatch) -> None:
        """End of a batch."""
        self.emitter.end_batch(end)

    def close(self) -> None:
        """The input ended; emit anything still held back."""
        return None
