"""`pip install .` into a clean venv, run from outside the checkout, gives a working errloop."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from errloop.deploy.install import load_policies
from errloop.rules.policy import bundled_policy_paths

ROOT = Path(__file__).parents[2]
ZAP_LINE = json.dumps(
    {
        "level": "error",
        "ts": 1732700000.123456,
        "caller": "service/main.go:88",
        "msg": "create user failed",
        "service": "user-api",
        "error": "Key: 'CreateUserRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag",
        "stacktrace": "main.(*server).createUser\n\t/src/demo/main.go:88",
    }
)


@pytest.mark.slow
def test_clean_install_finds_templates_rules_and_policies(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = env_dir / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", str(ROOT)], check=True, cwd=tmp_path)
    errloop = env_dir / "bin" / "errloop"
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    # the bundled policy → generated files, found through the installed package only
    gen = subprocess.run([str(errloop), "generate", "-o", "out"], cwd=outside, capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    script = (outside / "out" / "tasks" / "errloop-quickstart-validation.tick").read_text()
    assert "@errloop_classify()" in script and 'dbrp "errloop"."autogen"' in script
    conf = (outside / "out" / "kapacitor.conf").read_text().splitlines()
    chats = [n for p in load_policies(bundled_policy_paths()) for n in p.notify if n.kind in ("wecom", "slack")]
    assert chats and sum(line.startswith("[[httppost]]") for line in conf) == len(chats)  # one endpoint per chat target

    # default rules + the errlog normaliser through `errloop parse`
    parsed = subprocess.run(
        [str(errloop), "parse", "-"], input=ZAP_LINE + "\n", cwd=outside, capture_output=True, text=True
    )
    assert parsed.returncode == 0, parsed.stderr
    event = json.loads(parsed.stdout.splitlines()[0])
    assert event["rule_id"] == "validation.field_required"
    assert 'validate:"required"' in event["suggestion"]

    # the package is the installed copy, not this checkout
    where = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", "import errloop.rules.contract as c; print(c.__file__)"],
        cwd=outside,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(env_dir) in where and str(ROOT) not in where
    assert sys.version_info >= (3, 11)
