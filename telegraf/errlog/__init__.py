"""The errlog Telegraf input plugin: Go service logs → ``errloop_events`` line protocol (README.md).

Modules: ``tailer`` (files, rotation, offsets), ``container`` (CRI/Docker/compose wrappers,
partial lines), ``group`` (multi-line records: panics, zap console stacks),
``parsers`` (one module per log format),
``normalise`` (record → event, ``parse_text``), ``mask`` (templates, routes),
``gostack`` and ``errchain`` (Go stacks and wrapped errors), ``fingerprint`` (versioned),
``points`` (line protocol), ``plugin`` (the execd entry point, ``main``).
"""
