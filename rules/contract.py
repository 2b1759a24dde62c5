"""The data contract: measurement, tag and field names every part of errloop shares.

DESIGN.md §3. This module is the only place these names are spelled out; the plugin,
the UDFs, the generator's templates, errloop serve and the tests import them from here.
Tags hold bounded values only; ids, messages and stacks are fields.

An *event* travels through errloop as one flat mapping ``name -> value`` holding both its
tags (str) and fields (str, int, float or bool); :func:`split` separates them again
where a point is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

DATABASE: Final = "errloop"
RETENTION_POLICY: Final = "autogen"

# measurements
EVENTS: Final = "errloop_events"  # written by the errlog Telegraf plugin
CLASSIFIED: Final = "errloop_classified"  # written by the classify UDF's task
ALERTS: Final = "errloop_alerts"  # alert node output, the second path for alerts a post missed
ACTIONS: Final = "errloop_actions"  # written by errloop serve
DECISIONS: Final = "errloop_decisions"  # written by the generated decision tasks (a decision taken or withdrawn)
METRICS: Final = "errloop_metrics"  # generated metric tasks (later issues)
INGEST_STATS: Final = "errloop_ingest"  # the errlog plugin's own counters
RULES: Final = "errloop_rules"  # the classify UDF's rule (re)loads: what it loaded or refused

Value = str | int | float | bool
Event = dict[str, Value]

# errloop_events
EVENT_TAGS: Final = ("service", "env", "host", "level", "format", "operation", "fingerprint")
EVENT_FIELDS: Final[dict[str, type]] = {
    "event_id": str,
    "message": str,
    "template": str,
    "error_type": str,
    "error_chain": str,  # links joined by "\n", outermost first
    "root_cause": str,  # innermost link of the chain
    "stack": str,  # "function\n\tfile:line" pairs as Go prints them
    "top_frame": str,  # function of the first in-app frame
    "file_line": str,  # file:line of that frame
    "goroutine_id": int,
    "trace_id": str,
    "span_id": str,
    "http_method": str,
    "http_path": str,
    "http_status": int,
    "grpc_code": str,  # grpc-go's name of the status code: "Unavailable", "DeadlineExceeded", … ("OK" too)
    "sql_digest": str,  # the statement with literals as "?" (IN lists, VALUES rows collapsed), <= 1024 chars
    "sql_state": str,  # the SQLSTATE of a database error (Postgres "23505", MySQL "23000")
    "db_error_code": str,  # the driver's own error number as text (MySQL's "1062"); absent for SQLSTATE-only drivers
    "duration_ms": float,
    "caller": str,
    "logger": str,
    "raw": str,  # the original line(s), kept for format=unparsed and for replay
    "source": str,  # file the line came from
    "ingested_ns": int,  # wall clock when the plugin read the line (stage "ingested")
    "truncated": bool,
}

# errloop_classified = the event's tags and fields plus these
CLASSIFIED_TAGS: Final = (*EVENT_TAGS, "error_class", "category", "retryable", "severity", "rule_id")
CLASSIFIED_FIELDS: Final[dict[str, type]] = {
    **EVENT_FIELDS,
    "suggestion": str,
    "error_code": str,
    "retry_after_s": float,
    "classified_ns": int,  # wall clock when the classify UDF handled the event (stage "classified")
    "fp_count": int,  # events seen with this fingerprint by this classifier
    "window_count": int,  # events of the same group and category inside the UDF's window
    "sample_weight": float,  # with sampling: events this kept one stands for (1, or 1/rate if sampled)
    "sample_dropped": int,  # with sampling: events of its (service, category) dropped since the last kept one
}
SAMPLE_DROPPED: Final = "sample_dropped"  # what metric tasks add to each event's count
ERROR_CLASSES: Final = ("business", "system", "transient", "unknown")

# errloop_alerts: the alert node's output points (tags of the event + these)
ALERT_FIELDS: Final = ("alert_id", "alert_level", "alert_message")
ALERTED_NS: Final = "alerted_ns"  # added by the generated task right before its alert node (stage "alerted")

# errloop_metrics (generated metric and SLO tasks); tags service, operation, error_code, sli, slo_window
ERRORS_TOTAL: Final = "errors_total"  # classified errors per group and interval
BURN_RATE: Final = "burn_rate"  # per SLI and window
SLI_TOTAL: Final = "sli_total"  # requests (success rate) or latency measurements in that window
ERROR_DURATION_PERCENTILES: Final = (
    ("error_duration_ms_p50", 50.0),
    ("error_duration_ms_p95", 95.0),
    ("error_duration_ms_p99", 99.0),
)

# errloop_actions
ACTION_TAGS: Final = ("service", "policy", "action", "state")
ACTION_FIELDS: Final[dict[str, type]] = {
    "action_id": str,
    "decision_id": str,
    "event_ids": str,  # comma separated
    "event_id": str,  # the one event this row is about (one action row per event)
    "reason": str,
    "config": str,  # JSON
    "alert_ns": int,
    "recorded_ns": int,  # stage "action"
    "csv_ns": int,  # stage "recorded": the closed-loop CSV row was written
}

# errloop_decisions: a decision tree's action taken (level CRITICAL) or withdrawn (OK) for a service
DECISION_TAGS: Final = ("service", "operation", "policy", "action", "mode")
DECISION_FACTS: Final = (  # the facts of request metrics a generated decision task computes, as fields
    "qps",
    "error_rate",
    "success_rate",
    "error_count",
    "latency_p50",
    "latency_p95",
    "latency_p99",
)
DECISION_FIELDS: Final[dict[str, type]] = {
    "decision_id": str,  # the alert id: errloop:<policy>:decide-<action index>:<service>[:<operation>]
    "level": str,  # CRITICAL (taken) or OK (withdrawn)
    "message": str,
    "config": str,  # the action's config, JSON
    **dict.fromkeys(DECISION_FACTS, float),
}

# the stages of one event's life, in order (errloop trace)
STAGES: Final = ("logged", "ingested", "classified", "alerted", "action", "recorded")

# errloop_rules: one point per rule file (re)load the classify UDF tried
RULES_TAGS: Final = ("status", "task")  # status: "loaded" | "refused"
RULES_FIELDS: Final[dict[str, type]] = {
    "source": str,  # the rule file
    "rules": int,  # rules in force after this attempt (the old ones when refused)
    "problems": int,  # problems found (0 when loaded)
    "error": str,  # every problem, one "file:line:col: message (path)" per line
}

# plugin self-monitoring fields (measurement INGEST_STATS)
INGEST_COUNTERS: Final = ("lines_read", "events", "unparsed", "truncated", "rotations", "errors", "merged")


# Newlines inside string fields travel as Unicode control pictures: Telegraf's execd reads
# line protocol line by line and its parser refuses the escape "\n". Whoever matches on
# the text (the classifier) or shows it to a person restores them.
CONTROL_PICTURES: Final[dict[str, str]] = {"\n": "\u240a", "\r": "\u240d", "\f": "\u240c"}
RESTORE_TABLE: Final = str.maketrans({v: k for k, v in CONTROL_PICTURES.items()})


def restore_newlines(text: str) -> str:
    """Undo the control-picture substitution of string fields (␊ → LF, ␍ → CR, ␌ → FF)."""
    return text.translate(RESTORE_TABLE)


def split(event: Mapping[str, Value], tag_keys: tuple[str, ...]) -> tuple[dict[str, str], dict[str, Value]]:
    """Separate an event mapping into (tags, fields); empty tags are left out."""
    tags = {k: str(event[k]) for k in tag_keys if k in event and event[k] != ""}
    fields = {k: v for k, v in event.items() if k not in tag_keys}
    return tags, fields
