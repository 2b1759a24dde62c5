"""errloop deploy against the real Kapacitor: all or nothing, broken input changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from errloop.deploy.generate import METRICS_TEMPLATE_ID, generate, metrics_task_id
from errloop.deploy.install import DeployError, deploy, load_policies, plan, uninstall
from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack.run import StackConfig
from errloop.rules.policy import bundled_policy_paths

pytestmark = pytest.mark.stack
ENV = {"ERRLOOP_WECOM_URL": "http://127.0.0.1:9/wecom"}


def state(client: KapacitorClient) -> dict[str, Any]:
    """What errloop could have changed: tasks (script, status, executing, template), templates, topic handlers."""
    tasks = {
        t["id"]: (t["script"], t["status"], t["executing"], t.get("template-id", ""))
        for t in client.list_tasks("errloop-*")
    }
    template = client.get_template(METRICS_TEMPLATE_ID)
    handlers = {
        (t["id"], h["id"]): (h["kind"], h["options"])
        for t in client.list_topics("errloop-*")
        for h in client.list_handlers(t["id"])
    }
    return {
        "tasks": tasks,
        "templates": {METRICS_TEMPLATE_ID: template["script"] if template else None},
        "handlers": handlers,
        "httppost": client.httppost_endpoints(),
    }


@pytest.fixture
def client(tick_stack: StackConfig) -> KapacitorClient:
    with KapacitorClient(tick_stack.kapacitor_url) as c:
        yield c  # type: ignore[misc]


def bundled() -> Any:
    return generate(load_policies(bundled_policy_paths()), serve_url="http://127.0.0.1:9/")


def test_deploy_is_idempotent_and_dry_run_shows_no_change(client: KapacitorClient) -> None:
    deploy(client, bundled(), env=ENV, say=lambda _: None)
    first = state(client)
    assert first["tasks"]["errloop-quickstart-validation"][1:] == ("enabled", True, "")
    assert first["tasks"]["errloop-quickstart-validation-metrics"][1:] == ("enabled", True, METRICS_TEMPLATE_ID)
    assert all(line.startswith("=") for line in plan(client, bundled(), env=ENV)), plan(client, bundled(), env=ENV)
    enabled_at = {t["id"]: t["last-enabled"] for t in client.list_tasks("errloop-*")}
    said: list[str] = []
    deploy(client, bundled(), env=ENV, say=said.append)
    assert state(client) == first
    # nothing was redefined: tasks keep running (windows, UDF state), handlers keep what they hold
    assert said and all(line.endswith(("unchanged", "unchanged, executing", " set")) for line in said), said
    assert {t["id"]: t["last-enabled"] for t in client.list_tasks("errloop-*")} == enabled_at


def test_a_deploy_failing_half_way_puts_everything_back(client: KapacitorClient, tmp_path: Path) -> None:
    deploy(client, bundled(), env=ENV, say=lambda _: None)
    before = state(client)
    # same policy, but its rules file does not exist: the handlers are redefined first, then the
    # task is defined and its UDF fails at init, so Kapacitor never reports it executing
    text = bundled_policy_paths()[0].read_text().replace("rules: default", f"rules: {tmp_path / 'missing.yaml'}")
    text = text.replace("http://127.0.0.1:9101", "http://127.0.0.1:9102")
    broken = tmp_path / "quickstart.yaml"
    broken.write_text(text)
    bundle = generate(load_policies([broken]), serve_url="http://127.0.0.1:8/")
    with pytest.raises(DeployError) as exc:
        deploy(client, bundle, env={}, say=lambda _: None, timeout=10)
    assert "quickstart.yaml" in str(exc.value) and "missing.yaml" in str(exc.value)
    assert state(client) == before


def test_a_broken_policy_is_refused_with_its_position_and_nothing_changes(
    client: KapacitorClient, tick_stack: StackConfig, tmp_path: Path
) -> None:
    deploy(client, bundled(), env=ENV, say=lambda _: None)
    before = state(client)
    broken = tmp_path / "broken.yaml"
    broken.write_text(bundled_policy_paths()[0].read_text().replace("threshold: 1", "threshold: lots"))
    run = subprocess.run(
        [sys.executable, "-m", "errloop.deploy.cli", "deploy", str(broken), "--kapacitor", tick_stack.kapacitor_url],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert f"{broken}:18:16: expected an integer, got str 'lots' (spec.alert.threshold)" in run.stderr
    assert state(client) == before


def test_uninstall_removes_exactly_what_deploy_created(client: KapacitorClient) -> None:
    client.define_task("someone-elses", 'dbrp "errloop"."autogen"\nstream|from().measurement(\'x\')\n')
    try:
        deploy(client, bundled(), env=ENV, say=lambda _: None)
        uninstall(client, bundled(), say=lambda _: None)
        after = state(client)
        assert "errloop-quickstart-validation" not in after["tasks"]
        assert not after["handlers"]
        assert (
            after["httppost"]["errloop-wecom-quickstart-validation-0"]["url"] == "http://set-me-at-deploy-time.invalid/"
        )
        assert client.get_task("someone-elses") is not None
    finally:
        client.delete_task("someone-elses")


def test_metric_tasks_share_one_template_and_it_lives_as_long_as_a_task_uses_it(
    client: KapacitorClient, tmp_path: Path
) -> None:
    full = bundled()
    uninstall(client, full, say=lambda _: None)
    assert client.get_template(METRICS_TEMPLATE_ID) is None
    policies = load_policies(bundled_policy_paths())
    # a deploy that fails half way from nothing takes its new template away again
    text = bundled_policy_paths()[0].read_text().replace("rules: default", f"rules: {tmp_path / 'missing.yaml'}")
    broken = tmp_path / "quickstart.yaml"
    broken.write_text(text)
    with pytest.raises(DeployError):
        deploy(client, generate(load_policies([broken])), env={}, say=lambda _: None, timeout=10)
    assert client.get_template(METRICS_TEMPLATE_ID) is None

    # an older errloop's template: deploy replaces it, and Kapacitor reloads the tasks made from it
    old = full.templates[0].script.replace("// which events count", "// (an older errloop) which events count")
    client.define_template(METRICS_TEMPLATE_ID, old, "stream")
    said: list[str] = []
    deploy(client, full, env=ENV, say=said.append)
    assert f"  template {METRICS_TEMPLATE_ID} updated" in said
    tpl = client.get_template(METRICS_TEMPLATE_ID)
    assert tpl is not None and tpl["script"].strip() == full.templates[0].script.strip()
    for p in policies:
        task = client.get_task(metrics_task_id(p))
        assert task is not None and task["template-id"] == METRICS_TEMPLATE_ID and task["executing"], task
        assert task["vars"]["service_filter"]["value"] == f"\"service\" == '{p.service}'"
    # uninstalling one policy keeps the template (the other's metric task is made from it), the last removes it
    first, second = (generate([p]) for p in policies)
    said = []
    uninstall(client, first, say=said.append)
    assert f"  template {METRICS_TEMPLATE_ID} kept: other tasks are made from it" in said
    assert client.get_template(METRICS_TEMPLATE_ID) is not None
    uninstall(client, second, say=lambda _: None)
    assert client.get_template(METRICS_TEMPLATE_ID) is None
