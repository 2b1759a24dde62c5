"""errloop's own Kapacitor UDF runtime (wire protocol, threads, failure rules).

Write a UDF by subclassing :class:`Handler` and passing the class to :func:`run`.
Layout: ``framing`` (length prefixes), ``options`` (Info and typed options),
``output`` (writer, emitter, counters), ``handler`` (base class), ``connection``
(one serving thread and a watchdog per conversation), ``serve`` (process and socket modes), ``udf_pb2``
(generated from ``udf.proto``).
"""

from errloop.udf.agent import udf_pb2
from errloop.udf.agent.connection import Connection, HandlerFactory
from errloop.udf.agent.framing import FrameDecoder, FramingError, decode_uvarint, encode_uvarint, frame
from errloop.udf.agent.handler import Handler, InitError
from errloop.udf.agent.options import (
    DurationNs,
    Edge,
    Info,
    OptionError,
    Options,
    OptionSpec,
    OptionValue,
    ValueType,
    parse_options,
)
from errloop.udf.agent.output import Counters, Emitter
from errloop.udf.agent.serve import SocketServer, run, serve_process, serve_socket

__all__ = [
    "Connection",
    "Counters",
    "DurationNs",
    "Edge",
    "Emitter",
    "FrameDecoder",
    "FramingError",
    "Handler",
    "HandlerFactory",
    "Info",
    "InitError",
    "OptionError",
    "OptionSpec",
    "OptionValue",
    "Options",
    "SocketServer",
    "ValueType",
    "decode_uvarint",
    "encode_uvarint",
    "frame",
    "parse_options",
    "run",
    "serve_process",
    "serve_socket",
    "udf_pb2",
]
