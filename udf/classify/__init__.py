"""errloop_classify: the classification UDF (stream of errloop_events -> errloop_classified)."""

from errloop.udf.classify.handler import INFO, ClassifyHandler

__all__ = ["INFO", "ClassifyHandler"]
