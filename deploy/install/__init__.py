"""Install a generated bundle into a running Kapacitor, all or nothing.

Before touching anything, the current state of every object the bundle will change
(task, topic handler, ``[[httppost]]`` endpoint) is read. Then each is defined, tasks
are enabled and polled until they execute; if any step fails, every object is put
back the way it was and the error names the policy file and, for a TICKscript error,
its line and column.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from errloop.deploy.generate import Bundle, GeneratedHandler, GeneratedTask
from errloop.deploy.kapacitor import KapacitorClient, KapacitorError
from errloop.deploy.kapacitor.client import tick_position
from errloop.rules.decision import load_tree
from errloop.rules.located import Problem, SpecError
from errloop.rules.policy import Policy, load_policy, resolve_env


def load_policies(paths: Iterable[Path]) -> list[Policy]:
    """Read and validate policy files (and the tree files they name); one SpecError for all problems."""
    policies, problems = [], []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(str(path), 1, 1, f"cannot read: {e}", ""))
            continue
        try:
            policy = load_policy(text, str(path))
            if policy.decision_ref:
                tree_path = path.parent / policy.decision_ref
                tree_text = tree_path.read_text(encoding="utf-8")
                policy = dataclasses.replace(policy, decision=load_tree(tree_text, str(tree_path)))
            policies.append(policy)
        except SpecError as e:
            problems += e.problems
        except (OSError, UnicodeDecodeError) as e:
            problems.append(
                Problem(str(path), 1, 1, f"cannot read the decision tree it names: {e}", "spec.decision.tree")
            )
    if problems:
        raise SpecError(problems)
    return policies


class DeployError(RuntimeError):
    pass


@dataclass
class _Undo:
    """What to put back, in reverse order, if the deploy fails."""

    steps: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def add(self, what: str, fn: Callable[[], None]) -> None:
        self.steps.append((what, fn))

    def run(self, say: Callable[[str], None]) -> list[str]:
        failed = []
        for what, fn in reversed(self.steps):
            try:
                fn()
                say(f"  rolled back {what}")
            except Exception as e:
                failed.append(f"{what}: {e}")
        return failed


def _task_error(task: GeneratedTask, e: KapacitorError) -> DeployError:
    pos = tick_position(e.message)
    where = f"{task.source}: generated TICKscript {task.id}.tick"
    if pos:
        line = task.script.splitlines()[pos[0] - 1] if 0 < pos[0] <= len(task.script.splitlines()) else ""
        where += f":{pos[0]}:{pos[1]}"
        return DeployError(f"{where}: {e.message}\n    {line.strip()}")
    return DeployError(f"{where}: {e.message}")


def _resolved_options(h: GeneratedHandler, env: Mapping[str, str]) -> dict[str, Any]:
    """The handler's options as sent to Kapacitor: ${ENV} references in a post URL resolved."""
    if h.kind == "post" and "url" in h.options:
        return {**h.options, "url": resolve_env(h.options["url"], dict(env))}
    return dict(h.options)


def plan(client: KapacitorClient, bundle: Bundle, env: Mapping[str, str] | None = None) -> list[str]:
    """What a deploy would change, one line each (``+`` create, ``~`` update, ``=`` same, ``!`` cannot)."""
    env = dict(os.environ if env is None else env)
    lines = []
    for tpl in bundle.templates:
        cur_tpl = client.get_template(tpl.id)
        if cur_tpl is None:
            lines.append(f"+ template {tpl.id}")
        elif cur_tpl.get("script", "").strip() != tpl.script.strip():
            users = [t["id"] for t in client.list_tasks("*") if t.get("template-id") == tpl.id]
            lines.append(f"~ template {tpl.id} (script changed: Kapacitor reloads its {len(users)} task(s))")
        else:
            lines.append(f"= template {tpl.id}")
    for t in bundle.tasks:
        cur = client.get_task(t.id)
        if cur is None:
            lines.append(f"+ task {t.id}")
        elif t.template_id and (cur.get("template-id") != t.template_id or not _same_vars(cur, t)):
            lines.append(f"~ task {t.id} (template or vars changed)")
        elif not t.template_id and (cur.get("template-id") or cur.get("script", "").strip() != t.script.strip()):
            lines.append(f"~ task {t.id} (script changed)")
        elif cur.get("status") != "enabled":
            lines.append(f"~ task {t.id} (not enabled)")
        else:
            lines.append(f"= task {t.id}")
    for h in bundle.handlers:
        cur_h = client.get_handler(h.topic, h.id)
        try:
            want = _resolved_options(h, env)
        except KeyError as e:
            lines.append(f"! handler {h.topic}/{h.id} (environment variable {e.args[0]} is not set)")
            continue
        if cur_h is None:
            lines.append(f"+ handler {h.topic}/{h.id}")
        elif cur_h.get("kind") != h.kind or cur_h.get("options") != want:
            lines.append(f"~ handler {h.topic}/{h.id}")
        else:
            lines.append(f"= handler {h.topic}/{h.id}")
    existing = client.httppost_endpoints()
    for ep in bundle.endpoints:
        cur_ep = existing.get(ep.endpoint)
        try:
            url = resolve_env(ep.url, env)
        except KeyError as e:
            lines.append(f"! httppost endpoint {ep.endpoint} (environment variable {e.args[0]} is not set)")
            continue
        if cur_ep is None:
            lines.append(f"! httppost endpoint {ep.endpoint} is not in kapacitor.conf (see errloop generate)")
        elif cur_ep.get("url") != url or cur_ep.get("alert-template") != ep.alert_template:
            lines.append(f"~ httppost endpoint {ep.endpoint}")  # the URL itself may be a secret: not shown
        else:
            lines.append(f"= httppost endpoint {ep.endpoint}")
    return lines


def deploy(
    client: KapacitorClient,
    bundle: Bundle,
    env: Mapping[str, str] | None = None,
    say: Callable[[str], None] = print,
    timeout: float = 20.0,
) -> None:
    """Define and enable everything in the bundle; on any failure restore the previous state."""
    env = dict(os.environ if env is None else env)
    undo = _Undo()
    try:
        existing = client.httppost_endpoints()
        for ep in bundle.endpoints:
            try:
                url = resolve_env(ep.url, env)
            except KeyError as e:
                raise DeployError(
                    f"policy {ep.policy}: environment variable {e.args[0]} is not set (webhook URL)"
                ) from None
            before = existing.get(ep.endpoint)
            if before is None:
                raise DeployError(
                    f"policy {ep.policy}: Kapacitor has no [[httppost]] endpoint {ep.endpoint!r}. Add the [[httppost]] "
                    "sections of the kapacitor.conf snippet from `errloop generate` and restart Kapacitor once "
                    "(Kapacitor 1.8.3 drops endpoints added through its config API)."
                )
            client.put_httppost({"endpoint": ep.endpoint, "url": url, "alert-template": ep.alert_template})
            undo.add(f"httppost {ep.endpoint}", _restore_httppost(client, ep.endpoint, before))
            say(f"  httppost endpoint {ep.endpoint} set")
        for h in bundle.handlers:
            before_h = client.get_handler(h.topic, h.id)
            body = h.api_body()
            try:
                body["options"] = _resolved_options(h, env)
            except KeyError as e:
                raise DeployError(f"handler {h.topic}/{h.id}: environment variable {e.args[0]} is not set") from None
            if before_h is not None and before_h.get("kind") == h.kind and before_h.get("options") == body["options"]:
                # left alone: redefining a handler drops what it holds (an aggregate's pending alerts)
                say(f"  handler {h.topic}/{h.id} unchanged")
                continue
            client.put_handler(h.topic, body)
            undo.add(f"handler {h.topic}/{h.id}", _restore_handler(client, h.topic, h.id, before_h))
            say(f"  handler {h.topic}/{h.id} {'updated' if before_h else 'defined'}")
        for tpl in bundle.templates:
            before_tpl = client.get_template(tpl.id)
            if before_tpl is not None and before_tpl.get("script", "").strip() == tpl.script.strip():
                say(f"  template {tpl.id} unchanged")
                continue
            try:
                # replacing it reloads every task made from it, all or nothing (Kapacitor)
                client.define_template(tpl.id, tpl.script, tpl.type)
            except KapacitorError as e:
                raise DeployError(f"template {tpl.id}: {e}") from None
            undo.add(f"template {tpl.id}", _restore_template(client, tpl.id, tpl.type, before_tpl))
            say(f"  template {tpl.id} {'updated' if before_tpl else 'defined'}")
        for t in bundle.tasks:
            before_t = client.get_task(t.id)
            if (
                before_t is not None
                and _same_definition(before_t, t)
                and before_t.get("status") == "enabled"
                and before_t.get("executing")
            ):
                # left alone: redefining a task restarts it and loses its windows and its UDFs' state
                say(f"  task {t.id} unchanged, executing")
                continue
            try:
                if t.template_id:
                    client.define_template_task(t.id, t.template_id, t.vars, status="enabled")
                else:
                    client.define_task(t.id, t.script, status="enabled")
            except KapacitorError as e:
                undo.add(f"task {t.id}", _restore_task(client, t.id, before_t))
                raise _task_error(t, e) from None
            undo.add(f"task {t.id}", _restore_task(client, t.id, before_t))
            try:
                client.wait_executing(t.id, timeout=timeout)
            except KapacitorError as e:
                raise _task_error(t, e) from None
            say(f"  task {t.id} executing")
    except (DeployError, KapacitorError, OSError) as e:
        say(f"deploy failed: {e}")
        failed = undo.run(say)
        if failed:
            raise DeployError(f"{e}\nrollback incomplete: {'; '.join(failed)}") from None
        raise DeployError(str(e)) from None


def _restore_httppost(client: KapacitorClient, name: str, before: dict[str, Any]) -> Callable[[], None]:
    def fn() -> None:
        client.put_httppost(
            {"endpoint": name, "url": before.get("url", ""), "alert-template": before.get("alert-template", "")}
        )

    return fn


def _restore_handler(
    client: KapacitorClient, topic: str, hid: str, before: dict[str, Any] | None
) -> Callable[[], None]:
    def fn() -> None:
        if before is None:
            client.delete_handler(topic, hid)
        else:
            client.put_handler(topic, {k: before[k] for k in ("id", "kind", "options", "match") if before.get(k)})

    return fn


def _same_vars(cur: dict[str, Any], t: GeneratedTask) -> bool:
    """Kapacitor's vars (with a description) against the generated ones (type and value)."""
    got = {k: (v.get("type"), v.get("value")) for k, v in (cur.get("vars") or {}).items()}
    return got == {k: (v["type"], v["value"]) for k, v in t.vars.items()}


def _same_definition(cur: dict[str, Any], t: GeneratedTask) -> bool:
    if t.template_id:
        return cur.get("template-id") == t.template_id and _same_vars(cur, t)
    return not cur.get("template-id") and cur.get("script", "").strip() == t.script.strip()


def _restore_task(client: KapacitorClient, task_id: str, before: dict[str, Any] | None) -> Callable[[], None]:
    def fn() -> None:
        if before is None:
            client.delete_task(task_id)
            return
        now = client.get_task(task_id)
        if now is not None:
            client.set_status(task_id, "disabled")
        if before.get("template-id"):
            plain = {k: {"type": v["type"], "value": v["value"]} for k, v in (before.get("vars") or {}).items()}
            client.define_template_task(task_id, before["template-id"], plain, status="disabled")
        else:
            if now is not None and now.get("template-id"):  # a template task cannot take a script: recreate
                client.delete_task(task_id)
            client.define_task(task_id, before["script"], status="disabled")
        if before.get("status") == "enabled":
            client.set_status(task_id, "enabled")

    return fn


def _restore_template(
    client: KapacitorClient, template_id: str, kind: str, before: dict[str, Any] | None
) -> Callable[[], None]:
    def fn() -> None:
        if before is None:
            # tasks made from it are put back (or deleted) before this step runs: undo runs in reverse
            client.delete_template(template_id)
        else:
            client.define_template(template_id, before["script"], before.get("type", kind))

    return fn


def uninstall(client: KapacitorClient, bundle: Bundle, say: Callable[[str], None] = print) -> None:
    """Remove exactly what the bundle defines; a template only when no task is made from it any more
    (another policy's metric task may still be)."""
    for t in bundle.tasks:
        client.delete_task(t.id)
        say(f"  task {t.id} deleted")
    if bundle.templates:
        users = {t.get("template-id") for t in client.list_tasks("*")}
        for tpl in bundle.templates:
            if tpl.id in users:
                say(f"  template {tpl.id} kept: other tasks are made from it")
            elif client.get_template(tpl.id) is not None:
                client.delete_template(tpl.id)
                say(f"  template {tpl.id} deleted")
    for h in bundle.handlers:
        client.delete_handler(h.topic, h.id)
        say(f"  handler {h.topic}/{h.id} deleted")
    for ep in bundle.endpoints:
        # the endpoint itself lives in kapacitor.conf; take the webhook URL (a secret) out of Kapacitor
        if ep.endpoint in client.httppost_endpoints():
            client.put_httppost({"endpoint": ep.endpoint, "url": ep.url_for_file})
            say(f"  httppost endpoint {ep.endpoint} reset")
