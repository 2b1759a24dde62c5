"""The generator: validated policies → TICKscripts, topic handlers, config snippets, Chronograf dashboards.

One direction only (spec → model → output): :func:`generate` is pure and returns a
:class:`Bundle`; :func:`write` puts a bundle on disk; ``errloop deploy`` installs one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from errloop.deploy.generate import decide
from errloop.deploy.generate.tick import (
    TickSafe,
    UnsafeValue,
    environment,
    iql_ident,
    iql_str,
    template_text,
    tick_dur,
    tick_str,
)
from errloop.rules import contract
from errloop.rules.decision import facts_used
from errloop.rules.policy import ENV_REF, SLACK_CHANNEL, SLO, AlertSpec, Notify, Policy, service_pattern

DEFAULT_SERVE_URL = "http://127.0.0.1:9100"
SERVE_HANDLER_ID = "errloop-serve"

METRIC_INTERVAL = 60  # seconds: one errors_total / percentile point per group and minute
# the fields of contract.METRICS the generated tasks write (names owned by the contract)
ERRORS_TOTAL = contract.ERRORS_TOTAL
BURN_RATE = contract.BURN_RATE
SLI_TOTAL = contract.SLI_TOTAL
ERROR_DURATION_PERCENTILES = contract.ERROR_DURATION_PERCENTILES


@dataclass(frozen=True)
class BurnPair:
    """One multi-window alert of the SRE workbook: both windows must burn at least ``factor``."""

    long: int  # seconds
    short: int
    factor: float
    level: str


# The SRE workbook's pairs for a 30-day SLO (chapter 5, "Multiwindow, Multi-Burn-Rate Alerts")
WORKBOOK_WINDOW = 30 * 86400
WORKBOOK_PAIRS = (
    BurnPair(3600, 300, 14.4, "crit"),  # 2 % of the budget in 1 h: page
    BurnPair(6 * 3600, 1800, 6.0, "crit"),  # 5 % in 6 h: page
    BurnPair(86400, 2 * 3600, 3.0, "warn"),  # 10 % in 1 d: ticket
    BurnPair(3 * 86400, 6 * 3600, 1.0, "warn"),  # 10 % in 3 d: ticket
)


def errloop_version() -> str:
    try:
        return version("errloop")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


@dataclass(frozen=True)
class GeneratedTask:
    id: str
    script: str  # what Kapacitor runs: a template task's template with its vars applied
    policy: str
    source: str
    template_id: str = ""  # made from this Kapacitor template (bundle.templates) with these vars
    vars: dict[str, dict[str, str]] = field(default_factory=dict)

    def api_body(self) -> dict[str, Any]:
        """A template task's definition as Kapacitor's API and load directory read it."""
        return {"id": self.id, "template-id": self.template_id, "vars": self.vars}


@dataclass(frozen=True)
class GeneratedTemplate:
    id: str
    script: str
    type: str  # stream | batch


@dataclass(frozen=True)
class GeneratedHandler:
    topic: str
    id: str
    kind: str
    options: dict[str, Any]
    match: str = ""

    def api_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "kind": self.kind, "options": self.options}
        if self.match:
            body["match"] = self.match
        return body


@dataclass(frozen=True)
class HttpPostEndpoint:
    """A ``[[httppost]]`` endpoint whose alert-template shapes a chat message (WeCom, Slack)."""

    endpoint: str
    url: str  # may hold ${ENV} references: resolved only when deployed
    alert_template: str
    policy: str

    @property
    def url_is_secret(self) -> bool:
        return ENV_REF.search(self.url) is not None

    @property
    def url_env(self) -> str:
        m = ENV_REF.search(self.url)
        return m.group(1) if m else ""

    @property
    def url_env_ref(self) -> str:
        return "${" + self.url_env + "}"

    @property
    def url_for_file(self) -> str:
        return "http://set-me-at-deploy-time.invalid/" if self.url_is_secret else self.url


@dataclass(frozen=True)
class DatabaseUse:
    """A database the generated tasks use: errloop's own (created by deploy) or one a policy reads."""

    database: str
    retention_policy: str
    why: str
    create: bool  # errloop's own: deploy creates it when missing


@dataclass(frozen=True)
class Bundle:
    tasks: tuple[GeneratedTask, ...] = ()
    templates: tuple[GeneratedTemplate, ...] = ()  # defined before the tasks made from them
    handlers: tuple[GeneratedHandler, ...] = ()
    endpoints: tuple[HttpPostEndpoint, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # relative path → content, all of the above on disk
    notes: tuple[str, ...] = ()  # what a person must know: parts of a policy nothing was generated for, and why
    databases: tuple[DatabaseUse, ...] = ()


def _any_of(ref: str, values: Sequence[str]) -> str:
    parts = [f'"{ref}" == {tick_str(v)}' for v in values]
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _selector(alert: AlertSpec) -> TickSafe | None:
    sel = alert.selector
    parts = []
    if sel.error_classes:
        parts.append(_any_of("error_class", sel.error_classes))
    if sel.categories:
        parts.append(_any_of("category", sel.categories))
    return TickSafe(" AND ".join(parts)) if parts else None


def _iql_any_of(ref: str, values: Sequence[str]) -> str:
    parts = [f"{iql_ident(ref)} = {iql_str(v)}" for v in values]
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _iql_selector(alert: AlertSpec) -> list[str]:
    """The alert's selector as InfluxQL conditions (escaped parts only)."""
    sel = alert.selector
    parts = []
    if sel.error_classes:
        parts.append(_iql_any_of("error_class", sel.error_classes))
    if sel.categories:
        parts.append(_iql_any_of("category", sel.categories))
    return parts


def _alert_id(policy: Policy, index: int) -> str:
    return f"errloop:{policy.name}{'' if index == 0 else f':a{index}'}"


def rate_task_id(policy: Policy) -> str:
    return f"{policy.task_id}-rate"


def rate_topic(policy: Policy) -> str:
    return f"{policy.topic}-rate"


def _selector_text(alert: AlertSpec) -> str:
    sel = alert.selector
    parts = [f"error_class in {list(sel.error_classes)}"] if sel.error_classes else []
    parts += [f"category in {list(sel.categories)}"] if sel.categories else []
    return " and ".join(parts) or "every classified error"


def rate_tickscript(policy: Policy, source_name: str) -> str:
    """The batch task of the policy's error-rate alerts: selected errors per request, per service."""
    m = policy.metrics
    source = f"{iql_ident(m.database)}.{iql_ident(m.retention_policy)}.{iql_ident(m.measurement)}"
    classified = (
        f"{iql_ident(contract.DATABASE)}.{iql_ident(contract.RETENTION_POLICY)}.{iql_ident(contract.CLASSIFIED)}"
    )
    alerts = []
    for i, a in enumerate(policy.alerts):
        if not a.is_rate:
            continue
        req_where = _iql_service(policy, m.service_tag)
        err_where = _iql_service(policy, "service")
        err_where += _iql_selector(a)
        # every name and value below passed iql_ident / iql_str (refused if it cannot be quoted)
        requests_q = f"SELECT sum({iql_ident(m.requests_field)}) AS {iql_ident('requests')} FROM {source}"  # noqa: S608
        errors_q = f"SELECT count({iql_ident('event_id')}) AS {iql_ident('errors')} FROM {classified}"  # noqa: S608
        if req_where:
            requests_q += " WHERE " + " AND ".join(req_where)
        if err_where:
            errors_q += " WHERE " + " AND ".join(err_where)
        text = f"{_selector_text(a)}: {_percent(a.rate * 100)}% of requests over {tick_dur(a.window)}"
        alerts.append(
            {
                "index": i,
                "spec": a,
                "every": max(1, min(60, a.window // 6)),
                "text": text,
                "requests_query": requests_q + " ",
                "errors_query": errors_q + " ",
                "id": f"{_alert_id(policy, i)}:rate:{_tag('service')}",
                "message": (
                    f"errloop · {{{{ .Level }}}} · {_tag('service')}: error rate "
                    f'{{{{ printf "%.2f" (index .Fields "error_percent") }}}}% '
                    f"({_selector_text(a)}, alert at {_percent(a.rate * 100)}% over {tick_dur(a.window)}): "
                    f'{{{{ printf "%.0f" (index .Fields "errors") }}}} errors in '
                    f'{{{{ printf "%.0f" (index .Fields "requests") }}}} requests'
                ),
            }
        )
    return _render_task(
        "tickscripts/rate.tick.j2",
        policy,
        source_name,
        m=m,
        source_ref=source,
        classified=contract.CLASSIFIED,
        db=contract.DATABASE,
        rp=contract.RETENTION_POLICY,
        alerts=alerts,
        topic=rate_topic(policy),
    )


def policy_tickscript(policy: Policy, source_name: str) -> str:
    where = _service_where(policy)
    rules_path = None if policy.rules == "default" else policy.rules
    alerts = [
        {
            "spec": a,
            "selector": _selector(a),
            "id": f"{_alert_id(policy, i)}:{_tag('service')}:{_tag('category')}",
        }
        for i, a in enumerate(policy.alerts)
        if not a.is_rate
    ]
    return _render_task(
        "tickscripts/policy.tick.j2",
        policy,
        source_name,
        topic=policy.topic,
        db=contract.DATABASE,
        rp=contract.RETENTION_POLICY,
        events=contract.EVENTS,
        classified=contract.CLASSIFIED,
        rules_measurement=contract.RULES,
        alerts_measurement=contract.ALERTS,
        where=where,
        rules_path=rules_path,
        sampling=policy.sampling,
        alerts=alerts,
        window=policy.count_window,
        message=template_text("alerts/message.gotmpl").rstrip("\n"),
    )


def metrics_task_id(policy: Policy) -> str:
    return f"{policy.task_id}-metrics"


def slo_task_id(policy: Policy) -> str:
    return f"{policy.task_id}-slo"


def slo_topic(policy: Policy) -> str:
    return f"{policy.topic}-slo"


def _tag(name: str) -> str:
    """A Go-template reference to a tag of the alert's point (for .id and .message)."""
    return '{{ index .Tags "' + name + '" }}'


def _service_where(policy: Policy) -> TickSafe | None:
    if policy.service == "*":
        return None
    pattern = service_pattern(policy.service)
    if pattern is not None:  # the selector's alphabet has no "/": the regex stays inside its slashes
        return TickSafe(f'"service" =~ /{pattern}/')
    return TickSafe(f'"service" == {tick_str(policy.service)}')


def _iql_service(policy: Policy, tag: str) -> list[str]:
    """The InfluxQL condition selecting the policy's services on ``tag`` (none for "*")."""
    if policy.service == "*":
        return []
    pattern = service_pattern(policy.service)
    if pattern is not None:
        return [f"{iql_ident(tag)} =~ /{pattern}/"]
    return [f"{iql_ident(tag)} = {iql_str(policy.service)}"]


METRICS_TEMPLATE_ID = "errloop.metrics"  # a dot: no policy task id has one


def metrics_service_filter(policy: Policy) -> TickSafe:
    """The metric task's one variable: which services' events count (a lambda body)."""
    return _service_where(policy) or TickSafe("TRUE")


def metrics_template_script() -> str:
    """The Kapacitor template every policy's metric task is made from (``service_filter`` = TRUE)."""
    return metrics_tickscript(None)


def metrics_vars(policy: Policy) -> dict[str, dict[str, str]]:
    """The metric task's vars, as Kapacitor's task API takes them."""
    return {"service_filter": {"type": "lambda", "value": str(metrics_service_filter(policy))}}


def metrics_tickscript(policy: Policy | None, source_name: str = "") -> str:
    """The stream task turning errloop_classified into errors_total and error_duration_ms percentiles:
    the template with the policy's ``service_filter`` (what Kapacitor runs for its task)."""
    return _render_task(
        "tickscripts/metrics.tick.j2",
        policy,
        source_name,
        template_id=METRICS_TEMPLATE_ID,
        service_filter=TickSafe("TRUE") if policy is None else metrics_service_filter(policy),
        db=contract.DATABASE,
        rp=contract.RETENTION_POLICY,
        classified=contract.CLASSIFIED,
        metrics=contract.METRICS,
        interval=METRIC_INTERVAL,
        errors_total=ERRORS_TOTAL,
        sample_dropped=contract.SAMPLE_DROPPED,
        percentiles=ERROR_DURATION_PERCENTILES,
        drop_tags=[t for t in contract.CLASSIFIED_TAGS if t not in ("service", "operation")],
    )


def burn_pairs(slo: SLO) -> tuple[BurnPair, ...]:
    """The workbook's pairs, windows scaled to the SLO window (factors unchanged: same budget share)."""
    if slo.window == WORKBOOK_WINDOW:
        return WORKBOOK_PAIRS

    def scale(seconds: int) -> int:
        return max(1, round(seconds * slo.window / WORKBOOK_WINDOW))

    return tuple(BurnPair(scale(p.long), scale(p.short), p.factor, p.level) for p in WORKBOOK_PAIRS)


def _percent(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def slo_tickscript(policy: Policy, source_name: str) -> str:
    """The batch task alerting on SLO burn rates over the policy's request metrics."""
    slo, m = policy.slo, policy.metrics
    assert slo is not None
    source = f"{iql_ident(m.database)}.{iql_ident(m.retention_policy)}.{iql_ident(m.measurement)}"
    where = _iql_service(policy, m.service_tag)

    def query(select: str, extra: Sequence[str] = ()) -> str:
        conds = [*where, *extra]
        # every name and value below passed iql_ident / iql_str (refused if it cannot be quoted)
        text = f"SELECT {select} FROM {source}"  # noqa: S608 -- InfluxQL built from escaped parts only
        return text + (f" WHERE {' AND '.join(conds)}" if conds else "") + " "

    slis: list[dict[str, Any]] = []
    if slo.success_rate is not None:
        errors, requests = iql_ident(m.errors_field), iql_ident(m.requests_field)
        slis.append(
            {
                "name": "success rate",
                "var": "success",
                "objective_text": f"{_percent(slo.success_rate)}% of requests succeed",
                "budget": slo.budget(slo.success_rate),
                "budget_percent": round(slo.budget(slo.success_rate) * 100.0, 9),
                "queries": [
                    {"var": "success", "field": "bad", "text": query(f"sum({errors}) AS bad, sum({requests}) AS total")}
                ],
            }
        )
    if slo.latency is not None:
        lat, thr = iql_ident(m.latency_field), slo.latency.threshold_ms
        slis.append(
            {
                "name": "latency",
                "var": "latency",
                "objective_text": f"{_percent(slo.latency.objective)}% of latency measurements below {thr} ms",
                "budget": slo.budget(slo.latency.objective),
                "budget_percent": round(slo.budget(slo.latency.objective) * 100.0, 9),
                "queries": [
                    {"var": "latency_bad", "field": "bad", "text": query(f"count({lat}) AS bad", [f"{lat} >= {thr}"])},
                    {"var": "latency_total", "field": "total", "text": query(f"count({lat}) AS total")},
                ],
            }
        )
    pairs = burn_pairs(slo)
    windows = sorted({w for p in pairs for w in (p.long, p.short)})
    every = max(10, min(windows) // 5)
    tag = m.service_tag
    rendered_pairs = []
    for p in pairs:
        label = f"{tick_dur(p.long)}/{tick_dur(p.short)}"
        ids, messages = {}, {}
        for sli in slis:
            ids[sli["var"]] = f"errloop:{policy.name}:slo-{sli['var']}:{tick_dur(p.long)}:{_tag(tag)}"
            messages[sli["var"]] = (
                f"errloop · {{{{ .Level }}}} · {_tag(tag)}: {sli['name']} SLO ({sli['objective_text']}) "
                f'burns its error budget {{{{ printf "%.1f" (index .Fields "burn_long") }}}}x over {tick_dur(p.long)} '
                f'and {{{{ printf "%.1f" (index .Fields "burn_short") }}}}x over {tick_dur(p.short)} '
                f"(alert at {p.factor:g}x, windows {label})"
            )
        rendered_pairs.append(
            {"long": p.long, "short": p.short, "factor": p.factor, "level": p.level, "ids": ids, "messages": messages}
        )
    scale_note = "1 (30-day SLO window)" if slo.window == WORKBOOK_WINDOW else f"{slo.window}/{WORKBOOK_WINDOW}"
    # SLI deviation: the SLI itself below its objective over the fastest pair's short window, with
    # the min_requests guard scaled to that window (an info, not a page: the burn rates page)
    fastest = min(pairs, key=lambda p: p.short)
    deviation = {
        "window": fastest.short,
        "min_total": max(1, math.ceil(slo.min_requests * fastest.short / fastest.long)),
        "ids": {sli["var"]: f"errloop:{policy.name}:sli-{sli['var']}:{_tag(tag)}" for sli in slis},
        "messages": {
            sli["var"]: (
                f"errloop · {{{{ .Level }}}} · {_tag(tag)}: {sli['name']} deviates from its SLO "
                f"({sli['objective_text']}): "
                f'{{{{ printf "%.2f" (index .Fields "bad_percent") }}}}% bad over the last {tick_dur(fastest.short)}'
            )
            for sli in slis
        },
    }
    return _render_task(
        "tickscripts/slo.tick.j2",
        policy,
        source_name,
        source_ref=source,
        slo=slo,
        m=m,
        slis=slis,
        windows=windows,
        pairs=rendered_pairs,
        deviation=deviation,
        every=every,
        topic=slo_topic(policy),
        scale_note=scale_note,
        metrics_db=contract.DATABASE,
        metrics_rp=contract.RETENTION_POLICY,
        metrics_measurement=contract.METRICS,
        burn_rate_field=BURN_RATE,
        sli_total_field=SLI_TOTAL,
    )


def decide_task_id(policy: Policy) -> str:
    return f"{policy.task_id}-decide"


def decide_topic(policy: Policy) -> str:
    return f"{policy.topic}-decide"


_MODE_TEXT = {
    "shadow": "shadow: decisions are recorded and announced, no action is applied",
    # nothing applies an action yet (the roadmap's decision UDF and signed actions): say so
    "canary": "canary: decisions are recorded and announced for the subset {subset}; no action is applied yet",
    "enforce": "enforce: decisions are recorded and announced; no action is applied yet",
}


def decide_tickscript(policy: Policy, source_name: str) -> str:
    """The batch task taking the decisions of a tree over request metrics (see deploy/generate/decide.py)."""
    m = policy.metrics
    source = f"{iql_ident(m.database)}.{iql_ident(m.retention_policy)}.{iql_ident(m.measurement)}"
    where = "".join(f" WHERE {cond}" for cond in _iql_service(policy, m.service_tag))
    selects = [
        f"sum({iql_ident(m.requests_field)}) AS {iql_ident('requests')}",
        f"sum({iql_ident(m.errors_field)}) AS {iql_ident('errors')}",
    ]
    percentiles = []
    for aggregate, alias in decide.aggregates(policy.decision, iql_ident(m.latency_field)):
        selects.append(f"{aggregate} AS {iql_ident('q_' + alias)}")
        percentiles.append(alias)
    # every name and value above passed iql_ident / iql_str (refused if it cannot be quoted)
    query = f"SELECT {', '.join(selects)} FROM {source}{where} "  # noqa: S608 -- InfluxQL from escaped parts only
    used = facts_used(policy.decision)
    group_by = [m.service_tag] + ([m.operation_tag] if "operation" in used else [])
    names = {"service": m.service_tag, "operation": m.operation_tag}
    leaves = decide.decision_leaves(policy.decision, names)
    # errloop_decisions is tagged service (and operation) whatever the metrics call them
    renamed = [(tag, fact) for fact, tag in names.items() if tag in group_by and tag != fact]
    group = ":".join(_tag(g) for g in group_by)
    shown = [f for f in decide.NUMERIC_FACTS if f in used]
    facts_text = ", ".join(f'{f} {{{{ printf "%.4g" (index .Fields "{f}") }}}}' for f in shown)
    mode_text = _MODE_TEXT[policy.mode.name].format(subset=policy.mode.subset)
    ids, messages = {}, {}
    for leaf in leaves:
        ids[leaf.index] = f"errloop:{policy.name}:decide-{leaf.index}:{group}"
        messages[leaf.index] = (
            f'errloop · decision {{{{ if eq .Level "OK" }}}}withdrawn{{{{ else }}}}taken{{{{ end }}}} · {group}: '
            f"{leaf.action.name} when {leaf.description}"
            + (f" ({facts_text})" if facts_text else "")
            + f" · mode {policy.mode.name}"
        )
    return _render_task(
        "tickscripts/decide.tick.j2",
        policy,
        source_name,
        m=m,
        source_ref=source,
        query=query,
        window=policy.decision_window,
        every=policy.decision_every,
        group_by=group_by,
        percentiles=percentiles,
        renamed=renamed,
        leaves=leaves,
        ids=ids,
        messages=messages,
        topic=decide_topic(policy),
        mode_text=mode_text,
        db=contract.DATABASE,
        rp=contract.RETENTION_POLICY,
        decisions=contract.DECISIONS,
    )


def _render_task(template: str, policy: Policy | None, source_name: str, **values: Any) -> str:
    """A task template rendered with what every generated script names: errloop's version, its policy and file."""
    return (
        environment()
        .get_template(template)
        .render(version=errloop_version(), policy=policy, source=source_name, **values)
    )


# Notification targets (policy ``notify``). Every target is a topic handler on each of the
# policy's topics, next to errloop serve's (which always gets every alert):
# - post: Kapacitor's ``post`` handler, the alert JSON to the URL;
# - wecom / slack: a ``post`` handler through a ``[[httppost]]`` endpoint whose alert-template
#   shapes the chat message (templates/alerts/<kind>.gotmpl). Slack goes this way rather than
#   through Kapacitor's ``slack`` handler because that one reads the webhook URL from a
#   ``[[slack]]`` section of kapacitor.conf: the URL (a secret) would have to be written to the
#   generated snippet. The endpoint is written with a placeholder URL and errloop deploy sets the
#   real one (${ENV} resolved) through the config API, as for WeCom;
# - log: Kapacitor appends each alert, one JSON object a line, to an absolute file;
# - exec: Kapacitor runs [prog, args...] without a shell, the alert JSON on stdin.
# ``rate_limit`` (Kapacitor's topic handlers have no rate limit of their own): an ``aggregate``
# handler on the policy's topic collects the alerts of each interval and publishes one digest
# event (the count, and every alert's message in its details) to a topic of the target's own,
# ``<topic>.notify-<i>`` (a dot: no policy topic can have that name), where the target's
# handler sits. So at most one message per interval per target, and errloop serve, on the
# policy's topic, still gets every alert as it fires. The alerts of an interval not yet
# digested are lost when the aggregate handler is redefined (each errloop deploy puts every
# handler again) or Kapacitor restarts.
# ``group_by: fingerprint``: handlers cannot re-key alerts, so the target gets a task of its
# own (templates/alerts/notify.tick.j2) reading back what the policy's task fired
# (errloop_alerts), grouped by fingerprint, with Kapacitor's ``stateChangesOnly`` (and its
# interval when ``rate_limit`` is given), publishing to ``<topic>.notify-<i>``. Its alerts
# carry empty details, so a digest template shows just the message.
NOTIFY_TEMPLATES = {"wecom": "alerts/wecom.gotmpl", "slack": "alerts/slack.gotmpl"}
DIGEST_TEMPLATES = {"wecom": "alerts/wecom-digest.gotmpl", "slack": "alerts/slack-digest.gotmpl"}
NANOS = 1_000_000_000  # Kapacitor decodes a handler's Go time.Duration option from integer nanoseconds only


def digest_topic(topic: str, index: int) -> str:
    """The topic a rate-limited target's digests are published to."""
    return f"{topic}.notify-{index}"


def notify_task_id(policy: Policy, index: int) -> str:
    """The task of a target grouped by fingerprint."""
    return f"{policy.task_id}-notify-{index}"


def notify_tickscript(policy: Policy, index: int, notify: Notify, topic: str, source_name: str) -> str:
    """The stream task of a ``group_by: fingerprint`` target: one alert per fingerprint into ``topic``."""
    prefix = f"errloop:{policy.name}:"  # every alert id of the policy's task starts so (policy_tickscript)
    return _render_task(
        "alerts/notify.tick.j2",
        policy,
        source_name,
        index=str(index),
        kind=notify.kind,
        db=contract.DATABASE,
        rp=contract.RETENTION_POLICY,
        alerts_measurement=contract.ALERTS,
        id_prefix=prefix,
        id=f"{prefix}fingerprint:{_tag('fingerprint')}",
        rate_limit=notify.rate_limit,
        topic=topic,
    )


def notify_target(
    policy: Policy, index: int, notify: Notify, topics: Sequence[str]
) -> tuple[list[GeneratedHandler], HttpPostEndpoint | None, list[GeneratedTask]]:
    """The topic handlers, ``[[httppost]]`` endpoint (if any) and task (if grouped) of one notify target."""
    hid = f"errloop-{notify.kind}-{index}"
    endpoint = None
    kind = "post"
    options: dict[str, Any] = {"url": notify.url}
    if notify.kind in NOTIFY_TEMPLATES:
        name = (DIGEST_TEMPLATES if notify.rate_limit else NOTIFY_TEMPLATES)[notify.kind]
        template = template_text(name).strip()
        if notify.channel:  # a plain JSON string inside the Go template: refused unless of the safe alphabet
            if not SLACK_CHANNEL.fullmatch(notify.channel):
                raise UnsafeValue(f"not a Slack channel: {notify.channel!r}")
            template = template.replace("{", "{" + f'"channel":{json.dumps(notify.channel)},', 1)
        endpoint = HttpPostEndpoint(f"errloop-{notify.kind}-{policy.name}-{index}", notify.url, template, policy.name)
        options = {"endpoint": endpoint.endpoint}
    elif notify.kind == "log":
        kind, options = "log", {"path": notify.path}
    elif notify.kind == "exec":
        kind, options = "exec", {"prog": notify.command[0], "args": list(notify.command[1:])}
    handlers, tasks = [], []
    for topic in topics:
        if notify.group_by and topic == policy.topic:  # SLO alerts have no fingerprint: they go on as below
            grouped = digest_topic(topic, index)
            script = notify_tickscript(policy, index, notify, grouped, Path(policy.source).name)
            tasks.append(GeneratedTask(notify_task_id(policy, index), script, policy.name, policy.source))
            handlers.append(GeneratedHandler(grouped, hid, kind, options))
            continue
        if not notify.rate_limit:
            handlers.append(GeneratedHandler(topic, hid, kind, options))
            continue
        digest = digest_topic(topic, index)
        message = (
            f"errloop · {policy.name}: {{{{ .Count }}}} alert(s) in the last {{{{ .Interval }}}} "
            f"(at most one message every {tick_dur(notify.rate_limit)})"
        )
        aggregate = {"id": digest, "interval": notify.rate_limit * NANOS, "topic": digest, "message": message}
        handlers.append(GeneratedHandler(topic, hid, "aggregate", aggregate))
        handlers.append(GeneratedHandler(digest, hid, kind, options))
    return handlers, endpoint, tasks


def generate(policies: Sequence[Policy], serve_url: str = DEFAULT_SERVE_URL) -> Bundle:
    """Everything Kapacitor needs for these policies."""
    names = [p.name for p in policies]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"policy names must be unique, repeated: {', '.join(dupes)}")
    tasks, handlers, endpoints, notes = [], [], [], []
    for policy in policies:
        source_name = Path(policy.source).name
        tasks.append(GeneratedTask(policy.task_id, policy_tickscript(policy, source_name), policy.name, policy.source))
        tasks.append(
            GeneratedTask(
                metrics_task_id(policy),
                metrics_tickscript(policy, source_name),
                policy.name,
                policy.source,
                METRICS_TEMPLATE_ID,
                metrics_vars(policy),
            )
        )
        handlers.append(
            GeneratedHandler(policy.topic, SERVE_HANDLER_ID, "post", {"url": f"{serve_url.rstrip('/')}/api/v1/alerts"})
        )
        # SLO alerts have their own topic: they are about request metrics, not classified events,
        # so they go to people (the notify targets) and not to errloop serve's event loop
        topics = [policy.topic]
        if policy.slo is not None:
            tasks.append(
                GeneratedTask(slo_task_id(policy), slo_tickscript(policy, source_name), policy.name, policy.source)
            )
            topics.append(slo_topic(policy))
        if any(a.is_rate for a in policy.alerts):
            tasks.append(
                GeneratedTask(rate_task_id(policy), rate_tickscript(policy, source_name), policy.name, policy.source)
            )
            topics.append(rate_topic(policy))
        if policy.decision:
            unsupported = decide.unsupported_facts(policy.decision)
            if unsupported:
                notes.append(
                    f"{policy.source}: the decision tree tests {', '.join(unsupported)}, facts of single events "
                    "that request metrics cannot give; it needs the decision UDF (@errloop_decide, not built yet), "
                    "so no decision task was generated for it"
                )
            else:
                script = decide_tickscript(policy, source_name)
                tasks.append(GeneratedTask(decide_task_id(policy), script, policy.name, policy.source))
                topics.append(decide_topic(policy))
        for i, notify in enumerate(policy.notify):
            notify_handlers, endpoint, notify_tasks = notify_target(policy, i, notify, topics)
            handlers += notify_handlers
            tasks += notify_tasks
            if endpoint is not None:
                endpoints.append(endpoint)
    ids = [t.id for t in tasks]
    clashes = sorted({i for i in ids if ids.count(i) > 1})
    if clashes:
        raise ValueError(f"generated task ids collide (rename a policy): {', '.join(clashes)}")
    databases = [DatabaseUse(contract.DATABASE, contract.RETENTION_POLICY, "errloop's tasks write here", True)]
    for policy in policies:
        if policy.slo is not None or decide_task_id(policy) in ids or rate_task_id(policy) in ids:
            m = policy.metrics
            use = DatabaseUse(m.database, m.retention_policy, f"policy {policy.name} reads {m.measurement}", False)
            if (use.database, use.retention_policy) not in {(d.database, d.retention_policy) for d in databases}:
                databases.append(use)
    templates = (GeneratedTemplate(METRICS_TEMPLATE_ID, metrics_template_script(), "stream"),) if policies else ()
    bundle = Bundle(
        tuple(tasks),
        templates,
        tuple(handlers),
        tuple(endpoints),
        notes=tuple(notes),
        databases=tuple(databases),
    )
    bundle.files.update(_files(bundle))
    bundle.files.update(_dashboard_files(policies))
    return bundle


def _dashboard_files(policies: Sequence[Policy]) -> dict[str, str]:
    """One Chronograf dashboard per service (deploy/generate/dashboards.py), as ``dashboards/<service>.json``."""
    from errloop.deploy.generate import dashboards

    return {
        path: dashboards.render(board) for path, board in dashboards.dashboards(policies, errloop_version()).items()
    }


def _files(bundle: Bundle) -> dict[str, str]:
    from errloop.udf import registry

    env = environment()
    # Kapacitor's load-directory layout: a task of its own script as .tick, a template task as
    # .json (template-id and vars), templates under templates/
    files = {f"tasks/{t.id}.tick": t.script for t in bundle.tasks if not t.template_id}
    for t in bundle.tasks:
        if t.template_id:
            files[f"tasks/{t.id}.json"] = json.dumps(t.api_body(), indent=2, sort_keys=True) + "\n"
    for tpl in bundle.templates:
        files[f"templates/{tpl.id}.tick"] = tpl.script
    for h in bundle.handlers:
        body = {"id": h.id, "topic": h.topic, "kind": h.kind, "options": h.options}
        if h.match:
            body["match"] = h.match
        files[f"handlers/{h.topic}--{h.id}.json"] = json.dumps(body, indent=2, sort_keys=True) + "\n"
    udfs = {name: ["errloop", "udf", name] for name in registry.NAMES if name != "errloop_mirror"}
    files["kapacitor.conf"] = env.get_template("snippets/kapacitor.conf.j2").render(
        version=errloop_version(), udfs=udfs, endpoints=bundle.endpoints
    )
    files["telegraf.conf"] = env.get_template("snippets/telegraf.conf.j2").render(
        version=errloop_version(), db=contract.DATABASE
    )
    return files


def httppost_conf(endpoints: Sequence[HttpPostEndpoint]) -> str:
    """The ``[[httppost]]`` sections a Kapacitor needs before these endpoints can be deployed."""
    return environment().get_template("snippets/httppost.conf.j2").render(endpoints=endpoints)


def bundled_httppost_conf() -> str:
    """``[[httppost]]`` sections for the bundled example policies (the local stack starts with them)."""
    from errloop.deploy.install import load_policies
    from errloop.rules.policy import bundled_policy_paths

    return httppost_conf(generate(load_policies(bundled_policy_paths())).endpoints)


def write(bundle: Bundle, out_dir: Path) -> list[Path]:
    """Write the bundle's files under ``out_dir``; remove generated files it no longer has."""
    written = []
    for sub in ("tasks", "templates", "handlers", "dashboards"):
        d = out_dir / sub
        if d.is_dir():
            for old in d.iterdir():
                if f"{sub}/{old.name}" not in bundle.files and old.suffix in (".tick", ".json"):
                    old.unlink()
    for rel, content in sorted(bundle.files.items()):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
