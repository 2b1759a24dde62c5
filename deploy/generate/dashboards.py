"""Chronograf dashboards: validated policies → one importable dashboard per service.

Pure functions. :func:`dashboards` groups the policies by service and returns, per
service, the bare dashboard object of Chronograf's ``/chronograf/v1/dashboards`` API
(POST it as is); :func:`render` is its file text (``dashboards/<service>.json``).

Every cell reads errloop's own measurements (names from :mod:`errloop.rules.contract`)
with Chronograf's macros ``:dashboardTime:``, ``:upperDashboardTime:`` and ``:interval:``.
A policy for every service (``service: '*'``) gets a dashboard with a ``:service:``
template variable (a tagValues variable over errloop_classified); a named service's
dashboard filters on that service as a literal, so its title and its data always agree.

Every string from a policy that reaches a query is an escaped InfluxQL literal
(:func:`iql_string`, :func:`iql_identifier`); one that would still change a query's
meaning — a Chronograf macro such as ``:service:`` inside it, which Chronograf would
substitute even inside a literal, or a control character — is refused (:class:`UnsafeValue`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from errloop.deploy.generate import burn_pairs, decide
from errloop.deploy.generate.tick import UnsafeValue, tick_dur
from errloop.rules import contract
from errloop.rules.policy import SLO, Policy

# Chronograf's built-in macros (tick-facts §6.2) and errloop's template variable
DASHBOARD_TIME: Final = ":dashboardTime:"
UPPER_DASHBOARD_TIME: Final = ":upperDashboardTime:"
INTERVAL: Final = ":interval:"
SERVICE_VAR: Final = ":service:"

ALL_SERVICES: Final = "*"
ALL_SERVICES_FILE: Final = "_all-services"  # a service name starts with a letter or a digit: never clashes
DIRECTORY: Final = "dashboards"
GRID_COLUMNS: Final = 12  # Chronograf's dashboard grid

# the values of the ``sli`` tag the generated SLO task writes (slo_tickscript: sli "var")
SLI_SUCCESS: Final = "success"
SLI_LATENCY: Final = "latency"
SLO_WINDOW_TAG: Final = "slo_window"
SLI_TAG: Final = "sli"

CELL_TYPES: Final = frozenset(
    {"line", "line-stacked", "line-stepplot", "bar", "line-plus-single-stat", "single-stat", "gauge", "table", "note"}
)

_ID_NAMESPACE: Final = uuid.UUID("6f1c3f0e-9a53-4f43-8f3c-2f0a5c1de7a1")  # stable cell ids: same policies, same file
_MACRO: Final = re.compile(r":[^:\s]*:")  # what Chronograf's template replacement could match
_FORBIDDEN: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\ud800-\udfff]")

# line colors (type "scale"): Chronograf spreads a cell's series over them; bright ones, legible on its dark theme
_PALETTES: Final = {
    "errloop": ("#31C0F6", "#7CE490", "#FFB94A", "#F95F53", "#9394FF"),
    "errloop percentiles": ("#7CE490", "#FFB94A", "#F95F53"),  # p50 green, p95 orange, p99 red
    "errloop burn": ("#31C0F6", "#9394FF", "#FFB94A", "#F95F53"),
}


# ---------------------------------------------------------------------------------------------
# InfluxQL literals


def _checked(value: object) -> str:
    text = str(value)
    if _FORBIDDEN.search(text):
        raise UnsafeValue(f"control character or lone surrogate in {text!r}")
    if _MACRO.search(text):
        raise UnsafeValue(f"{text!r} holds a Chronograf macro (':name:'): Chronograf would substitute it")
    return text


def iql_string(value: object) -> str:
    """A single-quoted InfluxQL string literal (escapes ``\\``, ``'`` and newline as InfluxQL reads them)."""
    text = _checked(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def iql_identifier(value: object) -> str:
    """A double-quoted InfluxQL identifier (measurement, database, tag or field name)."""
    text = _checked(value)
    if not text:
        raise UnsafeValue("an InfluxQL identifier cannot be empty")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _source(measurement: str, database: str = contract.DATABASE, rp: str = contract.RETENTION_POLICY) -> str:
    return f"{iql_identifier(database)}.{iql_identifier(rp)}.{iql_identifier(measurement)}"


# ---------------------------------------------------------------------------------------------
# the cells


@dataclass(frozen=True)
class Scope:
    """Which service a dashboard shows: a literal, or the ``:service:`` variable."""

    service: str  # a service name, or "*"

    @property
    def variable(self) -> bool:
        """Every service, or a glob of them: the dashboard picks one with the ``:service:`` variable."""
        return self.service == ALL_SERVICES or "*" in self.service

    def on(self, tag: str) -> str:
        """The condition selecting the service on a tag (``"service" = 'checkout'``)."""
        return f"{iql_identifier(tag)} = {SERVICE_VAR if self.variable else iql_string(self.service)}"


def _where(*conds: str) -> str:
    return " WHERE " + " AND ".join((f"time > {DASHBOARD_TIME}", f"time < {UPPER_DASHBOARD_TIME}", *conds))


def _select(fields: str, source: str, where: str, tail: str = "") -> str:
    # every name and value in the parts passed iql_identifier / iql_string
    return f"SELECT {fields} FROM {source}{where}{tail}"  # noqa: S608 -- InfluxQL from escaped parts only


def _query(text: str) -> dict[str, Any]:
    return {
        "query": text,
        "queryConfig": {
            "database": "",
            "measurement": "",
            "retentionPolicy": "",
            "fields": [],
            "tags": {},
            "groupBy": {"time": "", "tags": []},
            "areTagsAccepted": False,
            "rawText": text,
            "range": None,
            "shifts": [],
        },
        "source": "",
        "type": "influxql",
    }


def _axis(label: str = "", suffix: str = "", lower: str = "") -> dict[str, Any]:
    return {"bounds": [lower, ""], "label": label, "prefix": "", "suffix": suffix, "base": "10", "scale": "linear"}


def _scale(palette: str) -> list[dict[str, Any]]:
    return [
        {"id": f"{palette}-{i}", "type": "scale", "hex": hex_, "name": palette, "value": "0"}
        for i, hex_ in enumerate(_PALETTES[palette])
    ]


def _text_color(hex_: str, name: str) -> list[dict[str, Any]]:
    return [{"id": "base", "type": "text", "hex": hex_, "name": name, "value": "-1000000000000000000"}]


@dataclass
class Cell:
    """One cell before it is placed: what it shows; :func:`_layout` gives it x and y."""

    key: str  # stable within a dashboard: the cell's id derives from it
    name: str
    type: str
    w: int
    h: int
    queries: list[str] = field(default_factory=list)
    y_label: str = ""
    y_suffix: str = ""
    colors: list[dict[str, Any]] = field(default_factory=list)
    columns: list[tuple[str, str, bool]] = field(default_factory=list)  # table: internal name, shown as, visible
    digits: int | None = None
    note: str = ""
    empty: str = ""  # markdown Chronograf shows instead of "No Results" when the cell has no data
    legend: bool = False
    sort_by: str = "time"  # table: the column Chronograf sorts by (always ascending: the latest rows come last)

    def body(self, scope_key: str, x: int, y: int) -> dict[str, Any]:
        fields = [{"internalName": n, "displayName": d, "visible": v} for n, d, v in self.columns] or [
            {"internalName": "time", "displayName": "", "visible": True}
        ]
        return {
            "i": str(uuid.uuid5(_ID_NAMESPACE, f"{scope_key}/{self.key}")),
            "x": x,
            "y": y,
            "w": self.w,
            "h": self.h,
            "name": self.name,
            # a note cell without a query shows Chronograf's "Add Data" button instead of its text
            "queries": [_query(q) for q in self.queries] or ([_query("")] if self.type == "note" else []),
            "axes": {"x": _axis(), "y": _axis(self.y_label, self.y_suffix, "0" if self.y_label else ""), "y2": _axis()},
            "type": self.type,
            "colors": self.colors,
            "legend": {"type": "static", "orientation": "bottom"} if self.legend else {},
            "tableOptions": {
                "verticalTimeAxis": True,
                "sortBy": {"internalName": self.sort_by, "displayName": "", "visible": True},
                "wrapping": "truncate",
                "fixFirstColumn": False,
            },
            "fieldOptions": fields,
            "timeFormat": "YYYY-MM-DD HH:mm:ss",
            "decimalPlaces": {"isEnforced": self.digits is not None, "digits": self.digits or 0},
            "note": self.empty or self.note,
            "noteVisibility": "showWhenNoData" if self.empty else "default",
        }


def _layout(rows: Sequence[Sequence[Cell]]) -> list[tuple[Cell, int, int]]:
    """Cells row by row, left to right; a row is as high as its highest cell."""
    placed, y = [], 0
    for row in rows:
        x = 0
        for cell in row:
            if x + cell.w > GRID_COLUMNS:
                raise ValueError(f"row too wide at {cell.key!r}")
            placed.append((cell, x, y))
            x += cell.w
        y += max((c.h for c in row), default=0)
    return placed


def _sli_tag(sli: str) -> str:
    return f"{iql_identifier(SLI_TAG)} = {iql_string(sli)}"


def _percent(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def _burn_cells(scope: Scope, policies: Sequence[Policy]) -> list[Cell]:
    """One burn-rate graph per SLI of the service's SLOs (each SLI once, whichever policy set it)."""
    metrics = _source(contract.METRICS)
    cells: list[Cell] = []
    seen: set[tuple[str, str]] = set()
    for policy in policies:
        slo = policy.slo
        if slo is None:
            continue
        m = policy.metrics
        tag = m.service_tag
        for sli, title in _slis(slo):
            if (tag, sli) in seen:
                continue
            seen.add((tag, sli))
            q = _select(
                f'max({iql_identifier(contract.BURN_RATE)}) AS "burn rate"',
                metrics,
                _where(scope.on(tag), _sli_tag(sli)),
                f" GROUP BY time({INTERVAL}), {iql_identifier(SLO_WINDOW_TAG)} FILL(none)",
            )
            cells.append(
                Cell(
                    f"burn-{tag}-{sli}",
                    f"Burn rate · {title} (SLO window {tick_dur(slo.window)}; 1 = on budget)",
                    "line",
                    6,
                    4,
                    [q],
                    y_label="× error budget",
                    colors=_scale("errloop burn"),
                    legend=True,
                    empty=f"No burn rates in this range. The policy's SLO task writes them, one per window, from the "
                    f"request metrics in {_md(m.database)}.{_md(m.retention_policy)}.{_md(m.measurement)}: "
                    "none means no requests there, or the task is not deployed.",
                )
            )
    return cells


def _slis(slo: SLO) -> list[tuple[str, str]]:
    out = []
    if slo.success_rate is not None:
        out.append((SLI_SUCCESS, f"success rate ≥ {_percent(slo.success_rate)} %"))
    if slo.latency is not None:
        out.append(
            (SLI_LATENCY, f"{_percent(slo.latency.objective)} % of requests under {slo.latency.threshold_ms} ms")
        )
    return out


def _note(scope: Scope, policies: Sequence[Policy], version: str) -> str:
    """The "About" cell: what the dashboard shows and where it came from (policy text escaped for markdown)."""
    if not scope.variable:
        who = f"**{_md(scope.service)}**"
    elif scope.service == ALL_SERVICES:
        who = "every service (pick one under *Variables*, top right)"
    else:
        who = f"the services matching **{_md(scope.service)}** (pick one under *Variables*, top right)"
    names = ", ".join(f"**{_md(p.name)}** ({_md(p.mode.name)} mode)" for p in policies)
    lines = [
        f"errloop for {who}, generated by errloop {_md(version)} from {'policy' if len(policies) == 1 else 'policies'} "
        f"{names}.",
        "",
        "Errors are the events errloop classified (`errloop_classified`), durations their `duration_ms`; "
        "actions are what errloop serve recorded (`errloop_actions`).",
    ]
    pages = sorted({p.factor for pol in policies if pol.slo for p in burn_pairs(pol.slo) if p.level == "crit"})
    if pages:
        lines += [
            "",
            "Burn rate 1 spends the error budget exactly over the SLO window; a page fires when both windows "
            f"of a pair burn at {' or '.join(f'{f:g}' for f in reversed(pages))} or more.",
        ]
    lines += ["", "Do not edit: change the policy and run `errloop generate`."]
    return "\n".join(lines)


_MD_SPECIAL: Final = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def _md(text: str) -> str:
    """Plain text inside markdown: its punctuation cannot make a link, an image, code or HTML."""
    html = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", html)


NO_ERRORS: Final = (
    "No errors in this range. `errloop_classified` is written by the policy's task (`errloop deploy`) "
    "from the events the errlog plugin reads from the service's logs."
)
NO_DURATIONS: Final = NO_ERRORS.replace("No errors", "No error durations") + " Events without `duration_ms` have none."
NO_METRICS: Final = (
    "No `errors_total` in this range: the policy's metric task writes one point per minute with errors "
    "(a minute is written when it ends)."
)
NO_ACTIONS: Final = (
    "No actions in this range. errloop serve records one for each alert it receives: "
    "is it running, and has an alert fired?"
)


def _cells(scope: Scope, policies: Sequence[Policy], version: str) -> list[list[Cell]]:
    classified = _source(contract.CLASSIFIED)
    metrics = _source(contract.METRICS)
    actions = _source(contract.ACTIONS)
    svc = scope.on("service")
    where = _where(svc)
    event_id, duration = iql_identifier("event_id"), iql_identifier("duration_ms")
    action_id = iql_identifier("action_id")
    per_interval = f" GROUP BY time({INTERVAL})"

    def tags(*names: str) -> str:
        return ", ".join(iql_identifier(n) for n in names)

    stats = [
        Cell(
            "errors",
            "Errors",
            "single-stat",
            2,
            3,
            [_select(f'count({event_id}) AS "errors"', classified, where)],
            colors=_text_color("#F95F53", "curacao"),
            digits=0,
        ),
        Cell(
            "fingerprints",
            "Distinct fingerprints",
            "single-stat",
            2,
            3,
            [
                _select(
                    'count("events") AS "fingerprints"',
                    "("
                    + _select(f'count({event_id}) AS "events"', classified, where, f" GROUP BY {tags('fingerprint')}")
                    + ")",
                    "",
                )
            ],
            colors=_text_color("#FFB94A", "pineapple"),
            digits=0,
        ),
        Cell(
            "p99",
            "p99 error duration",
            "single-stat",
            2,
            3,
            [_select(f'percentile({duration}, 99) AS "p99"', classified, where)],
            y_suffix=" ms",
            colors=_text_color("#00C9FF", "laser"),
            digits=0,
        ),
        Cell(
            "actions-count",
            "Actions taken",
            "single-stat",
            2,
            3,
            [_select(f'count({action_id}) AS "actions"', actions, where)],
            colors=_text_color("#7CE490", "honeydew"),
            digits=0,
        ),
        Cell("about", "About this dashboard", "note", 4, 3, note=_note(scope, policies, version)),
    ]
    rates = [
        Cell(
            "by-class",
            "Errors by class",
            "line-stacked",
            6,
            4,
            [
                _select(
                    f'count({event_id}) AS "errors"',
                    classified,
                    where,
                    f"{per_interval}, {tags('error_class')} FILL(0)",
                )
            ],
            y_label="errors",
            colors=_scale("errloop"),
            legend=True,
        ),
        Cell(
            "by-category",
            "Errors by category",
            "line-stacked",
            6,
            4,
            [
                _select(
                    f'count({event_id}) AS "errors"', classified, where, f"{per_interval}, {tags('category')} FILL(0)"
                )
            ],
            y_label="errors",
            colors=_scale("errloop"),
            legend=True,
        ),
    ]
    inner = _select(
        f'count({event_id}) AS "events", last({iql_identifier("root_cause")}) AS "root_cause", '
        f'last({iql_identifier("top_frame")}) AS "top_frame"',
        classified,
        where,
        f" GROUP BY {tags('fingerprint', 'category', 'error_class', 'operation')}",
    )
    outer = 'top("events", "fingerprint", 10) AS "events", ' + tags(
        "operation", "category", "error_class", "root_cause", "top_frame"
    )
    top = Cell(
        "top-fingerprints",
        "Top fingerprints (most events first)",
        "table",
        12,
        5,
        [_select(outer, f"({inner})", "")],
        columns=[
            ("time", "", False),
            (f"{contract.CLASSIFIED}.fingerprint", "fingerprint", True),
            (f"{contract.CLASSIFIED}.events", "events", True),
            (f"{contract.CLASSIFIED}.operation", "operation", True),
            (f"{contract.CLASSIFIED}.category", "category", True),
            (f"{contract.CLASSIFIED}.error_class", "class", True),
            (f"{contract.CLASSIFIED}.root_cause", "root cause (latest)", True),
            (f"{contract.CLASSIFIED}.top_frame", "top frame", True),
        ],
        digits=0,
    )
    pcts = ", ".join(f"percentile({duration}, {q}) AS {iql_identifier(f'p{q}')}" for q in (50, 95, 99))
    durations = [
        Cell(
            "durations",
            "Error duration p50 / p95 / p99",
            "line",
            6,
            4,
            [_select(pcts, classified, where, f"{per_interval} FILL(none)")],
            y_label="ms",
            colors=_scale("errloop percentiles"),
            legend=True,
        ),
        Cell(
            "by-code",
            "Errors by operation and error code (errors_total)",
            "table",
            6,
            4,
            [
                _select(
                    f'sum({iql_identifier(contract.ERRORS_TOTAL)}) AS "errors"',
                    metrics,
                    where,
                    f" GROUP BY {tags('operation', 'error_code')}",
                )
            ],
            columns=[
                ("time", "", False),
                ("operation", "operation", True),
                ("error_code", "error code", True),
                (f"{contract.METRICS}.errors", "errors", True),
            ],
            digits=0,
        ),
    ]
    acts = [
        Cell(
            "actions",
            "Actions taken, by action and state",
            "bar",
            6,
            4,
            [
                _select(
                    f'count({action_id}) AS "actions"',
                    actions,
                    where,
                    f"{per_interval}, {tags('action', 'state')} FILL(0)",
                )
            ],
            y_label="actions",
            colors=_scale("errloop"),
            legend=True,
        ),
        Cell(
            "latest-actions",
            "Latest actions",
            "table",
            6,
            4,
            [
                _select(
                    f"{tags('action', 'state', 'policy')}, {iql_identifier('event_id')}",
                    actions,
                    where,
                    " ORDER BY time DESC LIMIT 20",
                )
            ],
            columns=[
                ("time", "time", True),
                (f"{contract.ACTIONS}.action", "action", True),
                (f"{contract.ACTIONS}.state", "state", True),
                (f"{contract.ACTIONS}.policy", "policy", True),
                (f"{contract.ACTIONS}.event_id", "event (errloop trace ID)", True),
            ],
        ),
    ]
    rows = [stats, rates, [top], durations]
    empty = {"p99": NO_DURATIONS, "durations": NO_DURATIONS, "by-code": NO_METRICS}
    for row in (stats, rates, [top], durations, acts):
        for c in row:
            if c.type != "note":
                text = empty.get(c.key) or (NO_ACTIONS if "action" in c.key else NO_ERRORS)
                # a single-stat is too small for the explanation: the wider cells give it
                c.empty = text.split(". ")[0] + "." if c.type == "single-stat" else text
    burn = _burn_cells(scope, policies)
    for i in range(0, len(burn), 2):  # two a row; one alone spans the row
        pair = burn[i : i + 2]
        if len(pair) == 1:
            pair[0].w = GRID_COLUMNS
        rows.append(pair)
    rows.append(acts)
    decisions = _decision_cells(scope, policies)
    if decisions:
        rows.append(decisions)
    return rows


NO_DECISIONS: Final = (
    "No decisions in this range. The policy's decision task records one when a branch of its tree is "
    "taken and when it is withdrawn."
)


def _decision_cells(scope: Scope, policies: Sequence[Policy]) -> list[Cell]:
    """Decisions of the policies' trees (errloop_decisions), when one of them has a decision task."""
    if not any(p.decision and not decide.unsupported_facts(p.decision) for p in policies):
        return []
    source = _source(contract.DECISIONS)
    where = _where(scope.on("service"))
    where_taken = _where(scope.on("service"), f"{iql_identifier('level')} <> {iql_string('OK')}")

    def tags(*names: str) -> str:
        return ", ".join(iql_identifier(n) for n in names)

    cells = [
        Cell(
            "decisions",
            "Decisions taken, by action",
            "table",
            4,
            4,
            [
                _select(
                    f'count({iql_identifier("decision_id")}) AS "taken"',
                    source,
                    where_taken,
                    f" GROUP BY {tags('action', 'mode')}",
                )
            ],
            columns=[
                ("time", "", False),
                ("action", "action", True),
                ("mode", "mode", True),
                (f"{contract.DECISIONS}.taken", "taken", True),
            ],
            digits=0,
            sort_by="action",
        ),
        Cell(
            "latest-decisions",
            "Latest decisions (taken and withdrawn)",
            "table",
            8,
            4,
            [
                _select(
                    f"{tags('action', 'level')}, {iql_identifier('message')}",
                    source,
                    where,
                    " ORDER BY time DESC LIMIT 20",
                )
            ],
            columns=[
                ("time", "time", True),
                (f"{contract.DECISIONS}.action", "action", True),
                (f"{contract.DECISIONS}.level", "level", True),
                (f"{contract.DECISIONS}.message", "decision", True),
            ],
        ),
    ]
    for c in cells:
        c.empty = NO_DECISIONS
    return cells


def _template(scope: Scope) -> list[dict[str, Any]]:
    if not scope.variable:
        return []
    return [
        {
            "tempVar": SERVICE_VAR,
            "values": [],
            "id": str(uuid.uuid5(_ID_NAMESPACE, f"{scope.service}/template/service")),
            "type": "tagValues",
            "label": "service",
            "query": {
                "influxql": "SHOW TAG VALUES ON :database: FROM :measurement: WITH KEY=:tagKey:",
                "db": contract.DATABASE,
                "measurement": contract.CLASSIFIED,
                "tagKey": "service",
                "fieldKey": "",
            },
            "sourceID": "dynamic",
        }
    ]


def dashboard(service: str, policies: Sequence[Policy], version: str = "") -> dict[str, Any]:
    """The Chronograf dashboard of one service (``"*"``: every service, picked with ``:service:``)."""
    if not policies or any(p.service != service for p in policies):
        raise ValueError(f"every policy of the dashboard must watch {service!r}")
    scope = Scope(service)
    title = "every service" if service == ALL_SERVICES else service
    cells = [cell.body(service, x, y) for cell, x, y in _layout(_cells(scope, policies, version or "?"))]
    return {"name": f"errloop · {title}", "cells": cells, "templates": _template(scope)}


def file_name(service: str) -> str:
    """Where a service's dashboard is written, relative to the output directory."""
    # a glob's "*" is written "_any_" (a service name has no "*"): payments-* → payments-_any_.json
    stem = ALL_SERVICES_FILE if service == ALL_SERVICES else service.replace("*", "_any_")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", stem) or stem in (".", ".."):
        raise UnsafeValue(f"not a file name: {stem!r}")
    return f"{DIRECTORY}/{stem}.json"


def dashboards(policies: Sequence[Policy], version: str = "") -> dict[str, dict[str, Any]]:
    """One dashboard per service the policies watch, by file name (``dashboards/<service>.json``)."""
    by_service: dict[str, list[Policy]] = {}
    for p in policies:
        by_service.setdefault(p.service, []).append(p)
    files = [file_name(s) for s in sorted(by_service)]
    if len(set(files)) != len(files):  # a service named like a glob's file ("a-_any_" and "a-*")
        raise UnsafeValue(f"two dashboards would share a file: {sorted(f for f in files if files.count(f) > 1)}")
    return {file_name(s): dashboard(s, ps, version) for s, ps in sorted(by_service.items())}


def render(board: dict[str, Any]) -> str:
    """The file text: the bare dashboard object ``POST /chronograf/v1/dashboards`` takes."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def queries(board: dict[str, Any]) -> list[str]:
    """Every InfluxQL text of a dashboard's cells, in cell order."""
    return [q["query"] for cell in board["cells"] for q in cell["queries"]]
