"""errloop_mirror: a pass-through UDF for tests and benchmarks."""

from errloop.udf.mirror.handler import MirrorHandler

__all__ = ["MirrorHandler"]
