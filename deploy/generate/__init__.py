"""The generator: validated policies → TICKscripts, topic handlers, config snippets.

One direction only (spec → model → output): :func:`generate` is pure and returns a
:class:`Bundle`; :func:`write` puts a bundle on disk; ``errloop deploy`` installs one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from errloop.deploy.generate.tick import TickSafe, environment, template_text, tick_str
from errloop.rules import contract
from errloop.rules.policy import ENV_REF, Policy

DEFAULT_SERVE_URL = "http://127.0.0.1:9100"
SERVE_HANDLER_ID = "errloop-serve"


def errloop_version() -> str:
    try:
        return version("errloop")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


@dataclass(frozen=True)
class GeneratedTask:
    id: str
    script: str
    policy: str
    source: str


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
    """A ``[[httppost]]`` endpoint whose alert-template shapes a WeCom message."""

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
class Bundle:
    tasks: tuple[GeneratedTask, ...] = ()
    handlers: tuple[GeneratedHandler, ...] = ()
    endpoints: tuple[HttpPostEndpoint, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # relative path → content, all of the above on disk


def _any_of(ref: str, values: Sequence[str]) -> str:
    parts = [f'"{ref}" == {tick_str(v)}' for v in values]
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _selector(policy: Policy) -> TickSafe | None:
    sel = policy.alert.selector
    parts = []
    if sel.error_classes:
        parts.append(_any_of("error_class", sel.error_classes))
    if sel.categories:
        parts.append(_any_of("category", sel.categories))
    return TickSafe(" AND ".join(parts)) if parts else None


def policy_tickscript(policy: Policy, source_name: str) -> str:
    env = environment()
    where = None if policy.service == "*" else TickSafe(f'"service" == {tick_str(policy.service)}')
    rules_path = None if policy.rules == "default" else policy.rules
    return env.get_template("tickscripts/policy.tick.j2").render(
        version=errloop_version(),
        policy=policy,
        source=source_name,
        topic=policy.topic,
        db=contract.DATABASE,
        rp=contract.RETENTION_POLICY,
        events=contract.EVENTS,
        classified=contract.CLASSIFIED,
        alerts=contract.ALERTS,
        where=where,
        selector=_selector(policy),
        rules_path=rules_path,
        alert=policy.alert,
        alert_id=f'errloop:{policy.name}:{{{{ index .Tags "service" }}}}:{{{{ index .Tags "category" }}}}',
        message=template_text("alerts/message.gotmpl").rstrip("\n"),
    )


def generate(policies: Sequence[Policy], serve_url: str = DEFAULT_SERVE_URL) -> Bundle:
    """Everything Kapacitor needs for these policies."""
    names = [p.name for p in policies]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"policy names must be unique, repeated: {', '.join(dupes)}")
    tasks, handlers, endpoints = [], [], []
    wecom_template = template_text("alerts/wecom.gotmpl").strip()
    for policy in policies:
        source_name = Path(policy.source).name
        tasks.append(GeneratedTask(policy.task_id, policy_tickscript(policy, source_name), policy.name, policy.source))
        handlers.append(
            GeneratedHandler(policy.topic, SERVE_HANDLER_ID, "post", {"url": f"{serve_url.rstrip('/')}/api/v1/alerts"})
        )
        for i, notify in enumerate(policy.notify):
            hid = f"errloop-{notify.kind}-{i}"
            if notify.kind == "wecom":
                ep = HttpPostEndpoint(f"errloop-wecom-{policy.name}-{i}", notify.url, wecom_template, policy.name)
                endpoints.append(ep)
                handlers.append(GeneratedHandler(policy.topic, hid, "post", {"endpoint": ep.endpoint}))
            else:
                handlers.append(GeneratedHandler(policy.topic, hid, "post", {"url": notify.url}))
    bundle = Bundle(tuple(tasks), tuple(handlers), tuple(endpoints))
    bundle.files.update(_files(bundle))
    return bundle


def _files(bundle: Bundle) -> dict[str, str]:
    from errloop.udf import registry

    env = environment()
    files = {f"tasks/{t.id}.tick": t.script for t in bundle.tasks}
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
    for sub in ("tasks", "handlers"):
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
