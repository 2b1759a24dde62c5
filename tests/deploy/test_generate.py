"""The generator: bundled policies → tickscripts/, identical to what is checked in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from errloop.deploy.generate import generate
from errloop.deploy.generate.tick import UnsafeValue
from errloop.deploy.install import load_policies
from errloop.rules.policy import bundled_policy_paths, load_policy

ROOT = Path(__file__).parents[2]
POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {{name: p1}}
spec:
  service: {service}
  alert: {{threshold: 3, window: 90s, when: {{category: [db_timeout, io_timeout]}}}}
  notify: [{{kind: post, url: "http://hooks.example/x?a=1"}}]
"""


def test_checked_in_tickscripts_match_the_generator() -> None:
    bundle = generate(load_policies(bundled_policy_paths()))
    on_disk = {
        str(p.relative_to(ROOT / "tickscripts")): p.read_text()
        for p in (ROOT / "tickscripts").rglob("*")
        if p.is_file()
    }
    assert on_disk == bundle.files, "run `errloop generate -o tickscripts` and commit the result"


def test_policy_settings_reach_the_script() -> None:
    policy = load_policy(POLICY.format(service="orders"), "p1.yaml")
    bundle = generate([policy], serve_url="http://127.0.0.1:9999")
    script = bundle.tasks[0].script
    assert ".where(lambda: \"service\" == 'orders')" in script
    assert "\"category\" == 'db_timeout' OR \"category\" == 'io_timeout'" in script
    assert '.crit(lambda: "window_count" >= 3)' in script
    assert ".window(90s)" in script
    hooks = {h.id: h for h in bundle.handlers}
    assert hooks["errloop-serve"].options == {"url": "http://127.0.0.1:9999/api/v1/alerts"}
    assert hooks["errloop-post-0"].options == {"url": "http://hooks.example/x?a=1"}
    assert json.loads(bundle.files["handlers/errloop-p1--errloop-post-0.json"])["topic"] == "errloop-p1"


def test_every_service_when_star() -> None:
    script = generate([load_policy(POLICY.format(service="'*'"), "p1.yaml")]).tasks[0].script
    assert ".where(" not in script.split("@errloop_classify")[0]


def test_secret_webhook_urls_never_reach_generated_files() -> None:
    text = POLICY.format(service="orders").replace(
        'kind: post, url: "http://hooks.example/x?a=1"', "kind: wecom, url: '${WECOM_KEYED_URL}'"
    )
    bundle = generate([load_policy(text, "p1.yaml")])
    everything = "\n".join(bundle.files.values())
    assert "${WECOM_KEYED_URL}" in everything  # named, so people know where it comes from
    assert bundle.endpoints[0].url_for_file == "http://set-me-at-deploy-time.invalid/"


def test_duplicate_policy_names_are_refused() -> None:
    p = load_policy(POLICY.format(service="orders"), "p1.yaml")
    with pytest.raises(ValueError, match="unique"):
        generate([p, p])


def test_a_hostile_rules_path_cannot_leave_its_literal() -> None:
    text = POLICY.format(service="orders").replace("spec:\n", 'spec:\n  classify: {rules: "/x\') |log() //"}\n')
    script = generate([load_policy(text, "p1.yaml")]).tasks[0].script
    assert ".rules('/x\\') |log() //')" in script
    bad = POLICY.format(service="orders").replace("spec:\n", "spec:\n  classify: {rules: '/x\\'}\n")
    with pytest.raises(UnsafeValue):
        generate([load_policy(bad, "p1.yaml")])
