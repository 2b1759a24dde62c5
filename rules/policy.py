"""Policies: YAML → validated, typed model (``apiVersion: errloop/v1``, ``kind: Policy``).

A policy says which service it watches, which classified errors alert (``alert`` or a
list of ``alerts``: selector, threshold in a window, level), who is notified, where the
service's request metrics come from (``metrics``), its SLOs (``slo``), its decision tree
(``decision``) and its ``mode``. The model is a frozen dataclass tree so the generator
and the decide UDF can share it.

Mode: ``shadow`` (the default), ``canary`` (with a named subset of the traffic) or
``enforce``. The default is shadow because a policy that nobody has watched yet must not
intervene in production: in shadow mode errloop still classifies, alerts and notifies
people (a notification is not an intervention), but actions that change traffic
(``circuit-break``, ``fallback``, ``rate-limit``) are only recorded as what *would* have
been done. Canary enforces them only for the named subset (events whose tag has one of
the listed values); enforce acts everywhere. A typo can thus never turn a policy on.

Every problem is reported at once, with its position (:class:`errloop.rules.located.SpecError`).
Strings that reach a generated TICKscript are restricted here to safe alphabets, and the
generator escapes them again for their context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from errloop.rules import contract
from errloop.rules.decision import TreeNode, check_tree
from errloop.rules.located import Checker, Node, Problem, SpecError, parse

API_VERSION = "errloop/v1"
KIND = "Policy"

NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
SERVICE = re.compile(r"\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# spec.service: one service, "*" (every service) or a glob of names ("payments-*", "*-api")
SERVICE_SELECTOR = re.compile(r"\*|[A-Za-z0-9*][A-Za-z0-9_.*-]{0,127}")


def service_pattern(service: str) -> str | None:
    """The anchored regex of a glob selector (``payments-*`` → ``^payments\\-.*$``); None for a name or "*".

    The selector's alphabet has no ``/``, so the regex can sit between slashes in TICKscript and InfluxQL.
    """
    if service == "*" or "*" not in service:
        return None
    return "^" + ".*".join(re.escape(part) for part in service.split("*")) + "$"


CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,63}")
ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]{0,63})(?::-([^}]*))?\}")
PATH = re.compile(r"[^\x00-\x1f\x7f]{1,4096}")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")  # measurement, database, field and tag names
LEVELS = ("info", "warn", "crit")
NOTIFY_KINDS = ("wecom", "post", "slack", "log", "exec")
# the keys each notify kind takes, (required, optional), besides NOTIFY_ANY_KEYS
NOTIFY_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "wecom": (("url",), ()),
    "post": (("url",), ()),
    "slack": (("url",), ("channel",)),
    "log": (("path",), ()),
    "exec": (("command",), ()),
}
NOTIFY_ANY_KEYS = {"kind", "rate_limit", "group_by"}
NOTIFY_GROUP_BY = ("fingerprint",)
SLACK_CHANNEL = re.compile(r"#?[a-z0-9][a-z0-9._-]{0,79}")
# an exec argument or a path Kapacitor writes to: no shell is involved, but no value can hold a
# quote, a space, a $ or a glob either, so a policy never reads as if it did something else
SAFE_ARG = re.compile(r"[A-Za-z0-9_.@%+=:,/-]{1,1024}")
ABS_PATH = re.compile(r"(?:/[A-Za-z0-9_.@%+=:,-]+)+")
EXEC_MAX_ARGS = 32
RATE_LIMIT_RANGE = (1, 86400)  # seconds: 1s .. 1d
MODES = ("shadow", "canary", "enforce")
SUBSET_TAGS = ("service", "env", "host", "operation")  # bounded event tags a canary subset may select on
_MILLIS = re.compile(r"^(\d+)(ms|s|m)$")
_MILLIS_UNIT = {"ms": 1, "s": 1000, "m": 60_000}


@dataclass(frozen=True)
class Selector:
    """Which classified errors count: any of the classes and any of the categories (empty = all)."""

    error_classes: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertSpec:
    """A count alert (``threshold`` events of the selector in the window) or a rate alert
    (``rate``: events of the selector per request of the policy's request metrics)."""

    selector: Selector
    threshold: int  # events in the window (0 for a rate alert)
    window: int  # seconds
    level: str  # info | warn | crit
    rate: float = 0.0  # a fraction of requests, 0 < rate <= 1 (0: a count alert)
    min_requests: int = 1  # a rate alert: requests the window needs before the rate can alert

    @property
    def is_rate(self) -> bool:
        return self.rate > 0


@dataclass(frozen=True)
class MetricsSource:
    """Where the service's request metrics are (what its Telegraf already collects).

    Each point holds, per interval, the number of requests (``requests_field``), how many
    of them failed (``errors_field``) and optionally a latency in ms (``latency_field``),
    tagged with the service (``service_tag``) and operation (``operation_tag``).
    """

    measurement: str = "http_requests"
    database: str = "telegraf"  # Telegraf's default output database
    retention_policy: str = "autogen"
    requests_field: str = "requests"
    errors_field: str = "errors"
    latency_field: str = "latency_ms"
    service_tag: str = "service"
    operation_tag: str = "operation"


@dataclass(frozen=True)
class LatencySLO:
    objective: float  # percent of measurements below the threshold, e.g. 99.0
    threshold_ms: int


@dataclass(frozen=True)
class SLO:
    """Service level objectives; objectives are percentages (99.9 = 99.9 %)."""

    window: int = 30 * 86400  # seconds; the burn-rate windows are scaled to it
    success_rate: float | None = None
    latency: LatencySLO | None = None
    min_requests: int = 100  # guard: fewer requests than this in the long window never page

    def budget(self, objective: float) -> float:
        """The error budget of an objective, as a fraction (99.9 → 0.001)."""
        return round(1.0 - objective / 100.0, 12)


@dataclass(frozen=True)
class Sampling:
    """Semantic sampling of the classify UDF: keep these classes/categories, ``rate`` of the rest."""

    keep: tuple[str, ...] = ()  # error classes or categories always kept
    rate: float = 1.0  # fraction of the other events kept, in (0, 1]


@dataclass(frozen=True)
class Mode:
    name: str = "shadow"  # shadow | canary | enforce
    subset: str = ""  # canary: the subset's name
    subset_tag: str = ""  # canary: the event tag that selects it
    subset_values: tuple[str, ...] = ()  # canary: values of that tag inside the subset


@dataclass(frozen=True)
class Notify:
    """A notification target: who hears about the policy's alerts, and how often.

    ``rate_limit`` (seconds, 0 = every alert) turns the target into a digest: at most one
    message per interval, counting and listing every alert of the interval (Kapacitor's
    ``aggregate`` handler, see deploy/generate). ``group_by: fingerprint`` sends one message
    per fingerprint instead: when it starts alerting, when its level changes and, with
    ``rate_limit``, at most once per interval while it lasts. errloop serve always gets every alert.
    """

    kind: str  # wecom | post | slack | log | exec
    url: str = ""  # wecom, post, slack: a URL, or ${ENV} / ${ENV:-default}: resolved at deploy time, never in files
    channel: str = ""  # slack: a channel override (the webhook's own channel when empty)
    path: str = ""  # log: an absolute file Kapacitor appends each alert to, one JSON object a line
    command: tuple[str, ...] = ()  # exec: [absolute program, args...], run without a shell, alert JSON on stdin
    rate_limit: int = 0  # seconds: at most one (digest) message per interval; 0 = one message per alert
    group_by: str = ""  # "fingerprint": one message per fingerprint (when it starts, then per rate_limit)


DECISION_WINDOW = 60  # s: request metrics one evaluation of a decision tree looks at
DECISION_EVERY = 10  # s: how often the tree is evaluated (never more than the window)


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    service: str  # a service name, or "*" for every service
    rules: str  # "default" or a path to a classification rules file
    alerts: tuple[AlertSpec, ...]  # at least one; ``alert:`` in the file is a list of one
    notify: tuple[Notify, ...]
    source: str  # file the policy came from
    decision: tuple[TreeNode, ...] = ()  # the decision tree (design document chapter 4.1 form)
    decision_ref: str = ""  # a tree file named by the policy, relative to it; the loader reads it
    decision_window: int = DECISION_WINDOW  # seconds of request metrics each evaluation of the tree looks at
    decision_every: int = DECISION_EVERY  # seconds between evaluations
    metrics: MetricsSource = MetricsSource()
    slo: SLO | None = None
    mode: Mode = Mode()
    sampling: Sampling | None = None  # off unless classify.sampling is given

    @property
    def alert(self) -> AlertSpec:
        """The first (or only) alert."""
        return self.alerts[0]

    @property
    def count_window(self) -> int:
        """The classifier's counting window: every count alert's (1m when there are only rate alerts)."""
        return next((a.window for a in self.alerts if not a.is_rate), 60)

    @property
    def task_id(self) -> str:
        return f"errloop-{self.name}"

    @property
    def topic(self) -> str:
        return f"errloop-{self.name}"


def load_policy(text: str, source: str) -> Policy:
    """Parse and validate one policy document; raise SpecError listing every problem."""
    root = parse(text, source)
    c = Checker(source)
    if root is None:
        raise SpecError([_empty(source)])
    policy = _policy(c, root)
    c.done()
    assert policy is not None  # no problems means every part was built
    return policy


def _empty(source: str) -> Problem:
    return Problem(source, 1, 1, "empty document: expected a policy (apiVersion, kind, metadata, spec)", "")


def _policy(c: Checker, root: Node) -> Policy | None:
    top = c.mapping(root, {"apiVersion", "kind", "metadata", "spec"}, {"apiVersion", "kind", "metadata", "spec"})
    if top is None:
        return None
    api = top.get("apiVersion")
    if api is not None and c.string(api) not in (None, API_VERSION):
        c.error(api, f"unsupported apiVersion {api.value!r} (this errloop reads {API_VERSION})")
    kind = top.get("kind")
    if kind is not None and c.string(kind) not in (None, KIND):
        c.error(kind, f"kind must be {KIND!r}")

    meta = c.mapping(top.get("metadata"), {"name", "description"}, {"name"})
    name = c.string(meta.get("name"), NAME, "policy name") if meta else None
    description = (c.string(meta.get("description")) if meta and meta.get("description") else None) or ""

    spec = c.mapping(top.get("spec"), SPEC_KEYS, {"service"})
    if spec is None:
        return None
    service = c.string(spec.get("service"), SERVICE_SELECTOR, "service name or glob")
    rules = "default"
    classify = c.mapping(spec.get("classify"), {"rules", "sampling"})
    if classify is not None and classify.get("rules") is not None:
        rules = c.string(classify.get("rules"), PATH, "rules file path") or "default"
    sampling = _sampling(c, classify.get("sampling")) if classify is not None else None
    alerts = _alerts(c, spec)
    notify = tuple(n for n in (_notify(c, item) for item in c.seq(spec.get("notify"))) if n is not None)
    decision, decision_ref, decision_window, decision_every = _decision(c, spec.get("decision"))
    metrics = _metrics(c, spec.get("metrics"))
    slo = _slo(c, spec.get("slo"))
    mode = _mode(c, spec.get("mode"))
    if name is None or service is None or alerts is None or metrics is None or mode is None:
        return None
    return Policy(
        name,
        description,
        service,
        rules,
        alerts,
        notify,
        c.source,
        decision,
        decision_ref,
        decision_window,
        decision_every,
        metrics,
        slo,
        mode,
        sampling,
    )


SPEC_KEYS = {"service", "classify", "alert", "alerts", "notify", "decision", "metrics", "slo", "mode"}


def _alerts(c: Checker, spec: Node) -> tuple[AlertSpec, ...] | None:
    """``alert:`` (one) or ``alerts:`` (a list): exactly one of them.

    All alerts of a policy share one window: it is the classifier's counting window
    (``window_count``), one per generated task.
    """
    one, many = spec.get("alert"), spec.get("alerts")
    if one is not None and many is not None:
        c.error(many, "write either 'alert' (one) or 'alerts' (a list), not both")
        return None
    if one is None and many is None:
        c.error(spec, "missing required key 'alert' (or 'alerts', a list)")
        return None
    nodes = [one] if one is not None else c.seq(many, 1)
    built = [(n, _alert(c, n)) for n in nodes]
    if any(a is None for _, a in built) or not built:
        return None
    alerts = tuple(a for _, a in built if a is not None)
    counts = [(n, a) for n, a in built if a is not None and not a.is_rate]
    first = counts[0][1].window if counts else 0
    for node, a in counts[1:]:
        if a.window != first:
            window = node.get("window") or node
            c.error(
                window,
                f"every alert of a policy counts in the same window ({first}s, the first alert's); got {a.window}s",
            )
            return None
    return alerts


def _metrics(c: Checker, node: Node | None) -> MetricsSource | None:
    d = MetricsSource()
    m = c.mapping(node, {"measurement", "database", "retention_policy", "fields", "tags"})
    if node is None:
        return d
    if m is None:
        return None
    ok = True

    def name(n: Node | None, default: str, what: str) -> str:
        nonlocal ok
        if n is None:
            return default
        v = c.string(n, IDENT, what)
        ok = ok and v is not None
        return v or default

    fields = c.mapping(m.get("fields"), {"requests", "errors", "latency_ms"})
    tags = c.mapping(m.get("tags"), {"service", "operation"})
    f = fields.get if fields is not None else (lambda _k: None)
    t = tags.get if tags is not None else (lambda _k: None)
    out = MetricsSource(
        measurement=name(m.get("measurement"), d.measurement, "measurement name"),
        database=name(m.get("database"), d.database, "database name"),
        retention_policy=name(m.get("retention_policy"), d.retention_policy, "retention policy name"),
        requests_field=name(f("requests"), d.requests_field, "field name"),
        errors_field=name(f("errors"), d.errors_field, "field name"),
        latency_field=name(f("latency_ms"), d.latency_field, "field name"),
        service_tag=name(t("service"), d.service_tag, "tag name"),
        operation_tag=name(t("operation"), d.operation_tag, "tag name"),
    )
    bad_shape = (m.get("fields") is not None and fields is None) or (m.get("tags") is not None and tags is None)
    return out if ok and not bad_shape else None


SAMPLE_RATE_RANGE = (0.0001, 1.0)


def _sampling(c: Checker, node: Node | None) -> Sampling | None:
    """``classify.sampling``: ``keep`` (classes or categories) and/or ``rate``."""
    m = c.mapping(node, {"keep", "rate"})
    if m is None:
        return None
    keep = c.strings(m.get("keep"), CATEGORY, "error class or category") if m.get("keep") is not None else ()
    rate = _number(c, m.get("rate"), *SAMPLE_RATE_RANGE) if m.get("rate") is not None else 1.0
    if not keep and m.get("rate") is None:
        c.error(m, "sampling needs 'keep' (classes or categories always kept), 'rate' (0.0001..1), or both")
        return None
    return Sampling(keep, rate if rate is not None else 1.0)


def _number(c: Checker, node: Node | None, lo: float, hi: float) -> float | None:
    if node is None:
        return None
    if node.kind != "scalar" or isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
        c.error(node, f"expected a number, got {_kind_of(node)}")
        return None
    value = float(node.value)
    if not lo <= value <= hi:  # also refuses nan
        c.error(node, f"{node.value} is out of range [{lo:g}, {hi:g}]")
        return None
    return value


def _millis(c: Checker, node: Node | None, lo: int, hi: int) -> int | None:
    if node is None:
        return None
    if node.kind != "scalar" or not isinstance(node.value, str):
        c.error(node, f"expected a duration like 300ms or 2s, got {_kind_of(node)}")
        return None
    m = _MILLIS.match(node.value)
    if not m:
        c.error(node, f"{node.value!r} is not a latency (an integer and one of ms, s, m)")
        return None
    ms = int(m.group(1)) * _MILLIS_UNIT[m.group(2)]
    if not lo <= ms <= hi:
        c.error(node, f"{node.value} is out of range [{lo}ms, {hi}ms]")
        return None
    return ms


def _kind_of(node: Node) -> str:
    if node.kind != "scalar":
        return {"map": "a mapping", "seq": "a list"}[node.kind]
    return "nothing (null)" if node.value is None else f"{type(node.value).__name__} {node.value!r}"


OBJECTIVE_RANGE = (50.0, 99.999)  # percent: below 50 is surely a fraction written by mistake; 100 has no budget


def _slo(c: Checker, node: Node | None) -> SLO | None:
    m = c.mapping(node, {"window", "success_rate", "latency", "min_requests"})
    if m is None:
        return None
    window: int | None = SLO.window
    window_node = m.get("window")
    if window_node is not None:
        window = c.duration(window_node, 1, 10 * 365 * 86400)
        if window is not None and not 86400 <= window <= 90 * 86400:
            c.error(window_node, f"{window_node.value} is out of range [1d, 90d] (the SLO window)")
            window = None
    success = _number(c, m.get("success_rate"), *OBJECTIVE_RANGE)
    latency = None
    lat = c.mapping(m.get("latency"), {"objective", "threshold"}, {"objective", "threshold"})
    if lat is not None:
        objective = _number(c, lat.get("objective"), *OBJECTIVE_RANGE)
        threshold = _millis(c, lat.get("threshold"), 1, 600_000)
        if objective is not None and threshold is not None:
            latency = LatencySLO(objective, threshold)
    min_requests = SLO.min_requests
    if m.get("min_requests") is not None:
        min_requests = c.integer(m.get("min_requests"), 1, 1_000_000_000) or SLO.min_requests
    if m.get("success_rate") is None and m.get("latency") is None:
        c.error(m, "an slo needs a success_rate objective, a latency objective or both")
    if window is None:
        return None
    return SLO(window, success, latency, min_requests)


def _mode(c: Checker, node: Node | None) -> Mode | None:
    """``mode: shadow | enforce`` or ``mode: {name: canary, subset: NAME, tag: TAG, values: [...]}``."""
    if node is None:
        return Mode()
    if node.kind == "scalar":
        name = c.choice(node, MODES)
        if name == "canary":
            c.error(node, "canary mode needs its subset: mode: {name: canary, subset: NAME, tag: TAG, values: [...]}")
            return None
        return None if name is None else Mode(name)
    m = c.mapping(node, {"name", "subset", "tag", "values"}, {"name"})
    if m is None:
        return None
    name = c.choice(m.get("name"), MODES)
    if name is None:
        return None
    if name != "canary":
        for key in ("subset", "tag", "values"):
            extra = m.get(key)
            if extra is not None:
                c.error(extra, f"{key!r} only belongs to canary mode")
        return Mode(name)
    for key in ("subset", "tag", "values"):
        if m.get(key) is None:
            c.error(m, f"missing required key {key!r} (canary mode acts only on a named subset)")
    subset = c.string(m.get("subset"), NAME, "subset name")
    tag = c.choice(m.get("tag"), SUBSET_TAGS) if m.get("tag") is not None else None
    values = c.strings(m.get("values"), SERVICE, "tag value")
    if subset is None or tag is None or not values:
        return None
    return Mode(name, subset, tag, values)


def _decision(c: Checker, node: Node | None) -> tuple[tuple[TreeNode, ...], str, int, int]:
    """``decision:`` is a tree written inline (a list of nodes) or ``{tree: file.yaml | [nodes], window, every}``."""
    if node is None:
        return (), "", DECISION_WINDOW, DECISION_EVERY
    if node.kind == "seq":
        return check_tree(c, node), "", DECISION_WINDOW, DECISION_EVERY
    m = c.mapping(node, {"tree", "window", "every"}, {"tree"})
    if m is None:
        return (), "", DECISION_WINDOW, DECISION_EVERY
    window_node, every_node = m.get("window"), m.get("every")
    window = (c.duration(window_node, 1, 86400) if window_node is not None else None) or DECISION_WINDOW
    every = c.duration(every_node, 1, 3600) if every_node is not None else None
    if every is None:
        every = min(DECISION_EVERY, window)
    elif every > window and every_node is not None:
        c.error(every_node, f"evaluating every {every}s over a {window}s window would skip data: every <= window")
    tree_node = m.get("tree")
    if tree_node is not None and tree_node.kind == "seq":
        return check_tree(c, tree_node), "", window, every
    ref = c.string(tree_node)
    return (), ref or "", window, every


def _alert(c: Checker, node: Node | None) -> AlertSpec | None:
    m = c.mapping(node, {"when", "threshold", "rate", "min_requests", "window", "level"}, {"window"})
    if m is None:
        return None
    when = c.mapping(m.get("when"), {"error_class", "category"})
    classes: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    if when is not None:
        classes_node = when.get("error_class")
        classes = c.strings(classes_node)
        leaves = [] if classes_node is None else [n for _, n in classes_node.items()] or [classes_node]
        for leaf in leaves:
            if isinstance(leaf.value, str) and leaf.value not in contract.ERROR_CLASSES:
                c.error(leaf, f"{leaf.value!r} is not an error class ({', '.join(contract.ERROR_CLASSES)})")
        categories = c.strings(when.get("category"), CATEGORY, "category")
    threshold_node, rate_node, min_node = m.get("threshold"), m.get("rate"), m.get("min_requests")
    if (threshold_node is None) == (rate_node is None):
        c.error(m, "an alert needs either 'threshold' (events in the window) or 'rate' (events per request, e.g. 5%)")
        return None
    if min_node is not None and rate_node is None:
        c.error(min_node, "'min_requests' guards a rate alert: it needs 'rate'")
    threshold = c.integer(threshold_node, 1, 1_000_000) if threshold_node is not None else 0
    rate = _rate(c, rate_node) if rate_node is not None else 0.0
    min_requests = c.integer(min_node, 1, 1_000_000_000) if min_node is not None else 1
    window = c.duration(m.get("window"), 1, 7 * 86400)
    level = "crit"
    if m.get("level") is not None:
        level = c.choice(m.get("level"), LEVELS) or "crit"
    if threshold is None or rate is None or min_requests is None or window is None:
        return None
    return AlertSpec(Selector(classes, categories), threshold, window, level, rate, min_requests)


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _rate(c: Checker, node: Node) -> float | None:
    """``rate: 5%`` (or the number 5): a percentage of requests, (0, 100] → a fraction."""
    value = node.value
    if isinstance(value, str) and (m := _PERCENT.match(value)):
        percent = float(m.group(1))
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and node.kind == "scalar":
        percent = float(value)
    else:
        c.error(node, f"expected a percentage of requests like 5% or 0.5%, got {value!r}")
        return None
    if not 0 < percent <= 100:
        c.error(node, f"{percent:g}% is out of range (0%, 100%]")
        return None
    return percent / 100.0


def _notify(c: Checker, node: Node) -> Notify | None:
    """One ``notify`` entry: ``kind`` decides which other keys it takes (see NOTIFY_KEYS)."""
    every = set(NOTIFY_ANY_KEYS).union(*(set(r) | set(o) for r, o in NOTIFY_KEYS.values()))
    m = c.mapping(node, every, {"kind"})
    if m is None:
        return None
    kind = c.choice(m.get("kind"), NOTIFY_KINDS)
    if kind is None:
        return None
    required, optional = NOTIFY_KEYS[kind]
    mine = NOTIFY_ANY_KEYS | set(required) | set(optional)
    ok = True
    for key, child in m.items():
        if key in every and key not in mine:
            c.error(child, f"{key!r} does not belong to a {kind} target (its keys: {', '.join(sorted(mine))})")
            ok = False
    for key in required:
        if m.get(key) is None:
            c.error(m, f"missing required key {key!r} (a {kind} target needs it)")
            ok = False
    url = _notify_url(c, m.get("url")) if "url" in required else ""
    channel = c.string(m.get("channel"), SLACK_CHANNEL, "slack channel") if m.get("channel") is not None else ""
    path = _abs_path(c, m.get("path"), "absolute log file path") if "path" in required else ""
    command = _command(c, m.get("command")) if "command" in required else ()
    rate_limit = c.duration(m.get("rate_limit"), *RATE_LIMIT_RANGE) if m.get("rate_limit") is not None else 0
    group_by = c.choice(m.get("group_by"), NOTIFY_GROUP_BY) if m.get("group_by") is not None else ""
    if not ok or url is None or channel is None or path is None or command is None:
        return None
    if rate_limit is None or group_by is None:
        return None
    return Notify(kind, url, channel, path, command, rate_limit, group_by)


def _notify_url(c: Checker, node: Node | None) -> str | None:
    url = c.string(node)
    if url is None or node is None:
        return None
    concrete = ENV_REF.sub(lambda mm: mm.group(2) or "http://placeholder.invalid/", url)
    parts = urlsplit(concrete)
    bad_chars = any(ch in concrete for ch in "\r\n\t \"'<>`")
    if parts.scheme not in ("http", "https") or not parts.netloc or bad_chars:
        c.error(node, f"{url!r} is not an http(s) URL or a ${{ENV}} reference")
        return None
    return url


def _abs_path(c: Checker, node: Node | None, what: str) -> str | None:
    """An absolute path of safe characters, without ``.`` or ``..`` segments."""
    value = c.string(node, ABS_PATH, what)
    if value is None or node is None:
        return None
    if any(part in (".", "..") for part in value.split("/")):
        c.error(node, f"{value!r} holds a '.' or '..' segment: write the {what} without them")
        return None
    return value


def _command(c: Checker, node: Node | None) -> tuple[str, ...] | None:
    """``command: [/abs/prog, arg, ...]``: run without a shell, each value from a safe alphabet."""
    if node is None:
        return None
    if node.kind != "seq":
        c.error(node, f"expected a list [program, args...] (no shell), got {_kind_of(node)}")
        return None
    items = c.seq(node, 1)
    if len(items) > EXEC_MAX_ARGS:
        c.error(node, f"at most {EXEC_MAX_ARGS} items (program and arguments), got {len(items)}")
        return None
    if not items:
        return None
    prog = _abs_path(c, items[0], "absolute program path")
    args = [c.string(a, SAFE_ARG, "exec argument") for a in items[1:]]
    if prog is None or any(a is None for a in args):
        return None
    return (prog, *(a for a in args if a is not None))


def bundled_policy_paths() -> list[Path]:
    """The example policies shipped with errloop (``rules/policies/*.yaml``, package data)."""
    root = resources.files("errloop.rules").joinpath("policies")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith((".yaml", ".yml")))


QUICKSTART = "quickstart.yaml"


def quickstart_policy_path() -> Path:
    """The bundled policy of the design document's quick start (what errloop demo deploys)."""
    return next(p for p in bundled_policy_paths() if p.name == QUICKSTART)


def resolve_env(value: str, env: dict[str, str]) -> str:
    """Replace ``${VAR}`` / ``${VAR:-default}`` from ``env``; KeyError names a missing variable."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) in env:
            return env[m.group(1)]
        if m.group(2) is not None:
            return m.group(2)
        raise KeyError(m.group(1))

    return ENV_REF.sub(sub, value)
