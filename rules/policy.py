"""Policies: YAML → validated, typed model (``apiVersion: errloop/v1``, ``kind: Policy``).

This is the walking skeleton's subset of the policy language: which service, which
classified errors alert (selector, threshold in a window, level) and who is notified.
Later versions add metrics sources, SLOs, decision trees and modes; the model is a
frozen dataclass tree so the generator and the decide UDF can share it.

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
CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,63}")
ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]{0,63})(?::-([^}]*))?\}")
PATH = re.compile(r"[^\x00-\x1f\x7f]{1,4096}")
LEVELS = ("info", "warn", "crit")
NOTIFY_KINDS = ("wecom", "post")


@dataclass(frozen=True)
class Selector:
    """Which classified errors count: any of the classes and any of the categories (empty = all)."""

    error_classes: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertSpec:
    selector: Selector
    threshold: int  # events in the window
    window: int  # seconds
    level: str  # info | warn | crit


@dataclass(frozen=True)
class Notify:
    kind: str  # wecom | post
    url: str  # a URL, or ${ENV} / ${ENV:-default}: resolved at deploy time, never written to files


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    service: str  # a service name, or "*" for every service
    rules: str  # "default" or a path to a classification rules file
    alert: AlertSpec
    notify: tuple[Notify, ...]
    source: str  # file the policy came from
    decision: tuple[TreeNode, ...] = ()  # the decision tree (design document chapter 4.1 form)
    decision_ref: str = ""  # a tree file named by the policy, relative to it; the loader reads it

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

    spec = c.mapping(top.get("spec"), {"service", "classify", "alert", "notify", "decision"}, {"service", "alert"})
    if spec is None:
        return None
    service = c.string(spec.get("service"), SERVICE, "service name")
    rules = "default"
    classify = c.mapping(spec.get("classify"), {"rules"})
    if classify is not None and classify.get("rules") is not None:
        rules = c.string(classify.get("rules"), PATH, "rules file path") or "default"
    alert = _alert(c, spec.get("alert"))
    notify = tuple(n for n in (_notify(c, item) for item in c.seq(spec.get("notify"))) if n is not None)
    decision, decision_ref = _decision(c, spec.get("decision"))
    if name is None or service is None or alert is None:
        return None
    return Policy(name, description, service, rules, alert, notify, c.source, decision, decision_ref)


def _decision(c: Checker, node: Node | None) -> tuple[tuple[TreeNode, ...], str]:
    """``decision:`` is a tree written inline (a list of nodes) or ``{tree: file.yaml}``."""
    if node is None:
        return (), ""
    if node.kind == "seq":
        return check_tree(c, node), ""
    m = c.mapping(node, {"tree"}, {"tree"})
    ref = c.string(m.get("tree")) if m is not None else None
    return (), ref or ""


def _alert(c: Checker, node: Node | None) -> AlertSpec | None:
    m = c.mapping(node, {"when", "threshold", "window", "level"}, {"threshold", "window"})
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
    threshold = c.integer(m.get("threshold"), 1, 1_000_000)
    window = c.duration(m.get("window"), 1, 7 * 86400)
    level = "crit"
    if m.get("level") is not None:
        level = c.choice(m.get("level"), LEVELS) or "crit"
    if threshold is None or window is None:
        return None
    return AlertSpec(Selector(classes, categories), threshold, window, level)


def _notify(c: Checker, node: Node) -> Notify | None:
    m = c.mapping(node, {"kind", "url"}, {"kind", "url"})
    if m is None:
        return None
    kind = c.choice(m.get("kind"), NOTIFY_KINDS)
    url_node = m.get("url")
    url = c.string(url_node)
    if url is not None and url_node is not None:
        concrete = ENV_REF.sub(lambda mm: mm.group(2) or "http://placeholder.invalid/", url)
        parts = urlsplit(concrete)
        bad_chars = any(ch in concrete for ch in "\r\n\t \"'<>`")
        if parts.scheme not in ("http", "https") or not parts.netloc or bad_chars:
            c.error(url_node, f"{url!r} is not an http(s) URL or a ${{ENV}} reference")
            return None
    if kind is None or url is None:
        return None
    return Notify(kind, url)


def bundled_policy_paths() -> list[Path]:
    """The example policies shipped with errloop (``rules/policies/*.yaml``, package data)."""
    root = resources.files("errloop.rules").joinpath("policies")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith((".yaml", ".yml")))


def resolve_env(value: str, env: dict[str, str]) -> str:
    """Replace ``${VAR}`` / ``${VAR:-default}`` from ``env``; KeyError names a missing variable."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) in env:
            return env[m.group(1)]
        if m.group(2) is not None:
            return m.group(2)
        raise KeyError(m.group(1))

    return ENV_REF.sub(sub, value)
