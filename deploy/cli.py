"""The ``errloop`` command line. Each subcommand is a thin edge over a module."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from errloop.rules.decision import TreeNode
from errloop.rules.located import SpecError
from errloop.rules.policy import bundled_policy_paths


def _policy_paths(files: Sequence[str]) -> list[Path]:
    return [Path(f) for f in files] if files else bundled_policy_paths()


def _err(msg: str) -> int:
    print(f"errloop: {msg}", file=sys.stderr)
    return 1


# ---------------------------------------------------------------- subcommands


def cmd_parse(a: argparse.Namespace) -> int:
    from errloop.rules.classify import RuleError, default_rules, load_rules
    from errloop.telegraf.errlog.normalise import parse_text

    try:
        rules = default_rules() if not a.rules else load_rules(Path(a.rules).read_text(encoding="utf-8"), a.rules)
    except (RuleError, OSError) as e:
        return _err(str(e))
    stream = sys.stdin if a.file in (None, "-") else open(a.file, encoding="utf-8", errors="replace")
    with stream:
        for event in parse_text(stream, source=a.file or "-", service=a.service, env=a.env):
            c = rules.classify(event)
            out = dict(event)
            out.update(
                error_class=c.error_class,
                category=c.category,
                retryable=c.retryable,
                severity=c.severity,
                rule_id=c.rule_id,
                error_code=c.error_code,
                suggestion=c.suggestion,
            )
            if c.retry_after_s is not None:
                out["retry_after_s"] = c.retry_after_s
            print(json.dumps(out, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8", "replace").decode())
    return 0


def cmd_udf(a: argparse.Namespace) -> int:
    from errloop.udf import registry

    return registry.main(a.name, a.socket)


def cmd_telegraf(a: argparse.Namespace) -> int:
    from errloop.telegraf.errlog import plugin

    return plugin.main(a.config)


def _tree_form(tree: Sequence[TreeNode]) -> str:
    """How the generator deploys a tree: as TICKscript, or not yet (facts of single events)."""
    from errloop.deploy.generate.decide import unsupported_facts

    unsupported = unsupported_facts(tree)
    if not unsupported:
        return "compiles to a TICKscript decision task"
    return f"tests {', '.join(unsupported)}: needs the decision UDF, not built yet, no task is generated"


def cmd_validate(a: argparse.Namespace) -> int:
    """Policies and stand-alone decision trees (a file holding only a YAML list of nodes)."""
    from errloop.deploy.install import load_policies
    from errloop.rules.decision import load_tree
    from errloop.rules.located import Problem, parse

    problems: list[Problem] = []
    ok: list[str] = []
    for name in a.files:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
            root = parse(text, name)
            if root is not None and root.kind == "seq":
                tree = load_tree(text, name)
                form = _tree_form(tree)
                ok.append(f"{name}: ok (decision tree, {len(tree)} top-level node(s); {form})")
            else:
                policy = load_policies([path])[0]
                form = f"; its decision tree: {_tree_form(policy.decision)}" if policy.decision else ""
                ok.append(f"{name}: ok (policy {policy.name}{form})")
        except SpecError as e:
            problems += e.problems
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(name, 1, 1, f"cannot read: {e}", ""))
    for p in problems:
        print(p, file=sys.stderr)
    for line in ok:
        print(line)
    return 1 if problems else 0


def _bundle(a: argparse.Namespace):  # type: ignore[no-untyped-def]
    from errloop.deploy.generate import generate
    from errloop.deploy.install import load_policies

    bundle = generate(load_policies(_policy_paths(a.policies)), serve_url=a.serve_url)
    for note in bundle.notes:  # parts of a policy nothing could be generated for: said, never silent
        print(f"note: {note}", file=sys.stderr)
    return bundle


def cmd_generate(a: argparse.Namespace) -> int:
    from errloop.deploy.generate import write

    try:
        bundle = _bundle(a)
    except SpecError as e:
        print(e, file=sys.stderr)
        return 1
    for path in write(bundle, Path(a.output)):
        print(path)
    return 0


def cmd_deploy(a: argparse.Namespace) -> int:
    from errloop.deploy.install import DeployError, deploy, plan
    from errloop.deploy.kapacitor import KapacitorClient

    try:
        bundle = _bundle(a)
    except SpecError as e:
        print(e, file=sys.stderr)
        print("nothing was deployed", file=sys.stderr)
        return 1
    from errloop.deploy.install import influx

    with KapacitorClient(a.kapacitor) as client:
        if not client.ping():
            return _err(f"Kapacitor does not answer at {a.kapacitor}")
        try:
            if a.dry_run:
                lines = influx.plan(a.influx_url, bundle) if a.influx_url else []
                for line in lines + plan(client, bundle):
                    print(line)
                return 0
            warnings = influx.ensure(a.influx_url, bundle) if a.influx_url else []
        except influx.InfluxError as e:
            return _err(f"{e} (deploy without InfluxDB checks: --influx-url '')")
        try:
            deploy(client, bundle)
        except DeployError as e:
            return _err(str(e))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"deployed {len(bundle.tasks)} task(s), {len(bundle.handlers)} handler(s)")
    return 0


def cmd_uninstall(a: argparse.Namespace) -> int:
    from errloop.deploy.install import uninstall
    from errloop.deploy.kapacitor import KapacitorClient

    try:
        bundle = _bundle(a)
    except SpecError as e:
        print(e, file=sys.stderr)
        return 1
    with KapacitorClient(a.kapacitor) as client:
        uninstall(client, bundle)
    return 0


def cmd_trace(a: argparse.Namespace) -> int:
    from errloop.deploy.serve.influx import InfluxError
    from errloop.deploy.serve.trace import fetch_trace, format_trace

    try:
        trace = fetch_trace(a.influx_url, a.event_id)
    except ValueError as e:  # not an event id at all
        _err(str(e))
        return 2
    except (LookupError, InfluxError) as e:
        return _err(str(e))
    print(json.dumps(trace, indent=2) if a.json else format_trace(trace))
    return 0


def cmd_stack(a: argparse.Namespace) -> int:
    from errloop.deploy.generate import bundled_httppost_conf
    from errloop.deploy.stack import run

    extra = bundled_httppost_conf()
    cfg = (
        run.StackConfig(state_dir=Path(a.state_dir), kapacitor_extra=extra)
        if a.state_dir
        else run.StackConfig(kapacitor_extra=extra)
    )
    if a.action == "up":
        try:
            run.up(cfg)
        except (run.StackError, RuntimeError) as e:
            return _err(str(e))
        print(f"stack up: InfluxDB {cfg.influx_url}  Kapacitor {cfg.kapacitor_url}  state {cfg.state_dir}")
    elif a.action == "down":
        run.down(cfg, purge=a.purge)
    elif a.action == "build":
        from errloop.deploy.stack import build

        return build.main()
    else:
        for program, state in run.status(cfg).items():
            print(f"{program:11} {state}")
    return 0


def cmd_supervise(a: argparse.Namespace) -> int:
    from errloop.deploy.supervise import loop

    return loop.main(a.kapacitor, a.pattern, a.interval, a.once)


def cmd_demo(a: argparse.Namespace) -> int:
    from errloop.deploy.demo import scenario

    return scenario.main(keep=a.keep, requests=a.requests)


# ---------------------------------------------------------------- argument parsing


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="errloop", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("parse", help="normalise + classify Go log text; one JSON event per line")
    s.add_argument("file", nargs="?", help="log file, or - for stdin (default)")
    s.add_argument("--rules", help="classification rules file (default: the bundled rules)")
    s.add_argument("--service", default="", help="service name when the log does not say")
    s.add_argument("--env", default="")
    s.add_argument("--host", default=socket.gethostname(), help="host tag (default: this machine's name)")
    s.set_defaults(fn=cmd_parse)

    s = sub.add_parser("udf", help="run a Kapacitor UDF (what kapacitor.conf points at)")
    s.add_argument("name")
    s.add_argument("--socket", help="serve on this unix socket instead of stdin/stdout")
    s.set_defaults(fn=cmd_udf)

    s = sub.add_parser("telegraf", help="run a Telegraf execd plugin (what telegraf.conf points at)")
    s.add_argument("plugin", choices=["errlog"])
    s.add_argument("--config", required=True)
    s.set_defaults(fn=cmd_telegraf)

    s = sub.add_parser("validate", help="check policies and decision trees; every problem as file:line:col")
    s.add_argument("files", nargs="+")
    s.set_defaults(fn=cmd_validate)

    from errloop.deploy.generate import DEFAULT_SERVE_URL

    for name, fn, hlp in (
        ("generate", cmd_generate, "write TICKscripts, handlers and config snippets"),
        ("deploy", cmd_deploy, "install policies into a running Kapacitor (all or nothing)"),
        ("uninstall", cmd_uninstall, "remove what errloop deploy installed for these policies"),
    ):
        s = sub.add_parser(name, help=hlp)
        s.add_argument("policies", nargs="*", help="policy files (default: the bundled examples)")
        s.add_argument("--serve-url", default=os.environ.get("ERRLOOP_SERVE_URL", DEFAULT_SERVE_URL))
        if name == "generate":
            s.add_argument("-o", "--output", default="tickscripts")
        else:
            s.add_argument("--kapacitor", default=os.environ.get("KAPACITOR_URL", "http://127.0.0.1:9092"))
        if name == "deploy":
            s.add_argument("--dry-run", action="store_true", help="print what would change")
            s.add_argument(
                "--influx-url",
                default=os.environ.get("ERRLOOP_INFLUX_URL", "http://127.0.0.1:8086"),
                help="InfluxDB: errloop's database is created if missing, the policies' metric databases checked "
                "('' to skip)",
            )
        s.set_defaults(fn=fn)

    s = sub.add_parser("serve", help="errloop's own server: alerts, actions, closed-loop CSV, traces", add_help=False)
    s.set_defaults(fn=None)

    s = sub.add_parser("trace", help="print the life of one event")
    s.add_argument("event_id")
    s.add_argument("--influx-url", default=os.environ.get("ERRLOOP_INFLUX_URL", "http://127.0.0.1:8086"))
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_trace)

    s = sub.add_parser("stack", help="the local TICK stack for tests and the demo")
    s.add_argument("action", choices=["up", "down", "status", "build"])
    s.add_argument("--state-dir", help="default: $ERRLOOP_STACK_DIR or ~/.local/state/errloop/stack")
    s.add_argument("--purge", action="store_true", help="with down: delete the stack's data")
    s.set_defaults(fn=cmd_stack)

    s = sub.add_parser("supervise", help="re-enable errloop's Kapacitor tasks that stopped executing")
    s.add_argument("--kapacitor", default=os.environ.get("KAPACITOR_URL", "http://127.0.0.1:9092"))
    s.add_argument("--pattern", default="errloop-*", help="task ids to watch (glob; default errloop-*)")
    s.add_argument("--interval", default="5s", help="poll interval, Go duration (default 5s)")
    s.add_argument("--once", action="store_true", help="poll once and exit (1 if a restart was refused)")
    s.set_defaults(fn=cmd_supervise)

    s = sub.add_parser("demo", help="the quick-start scenario, end to end")
    s.add_argument("--keep", action="store_true", help="leave everything running")
    s.add_argument("--requests", type=int, default=1, help="how many scenario requests to send")
    s.set_defaults(fn=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "serve":  # serve owns its options
        from errloop.deploy.serve import app

        return app.main(args[1:])
    parsed = build_parser().parse_args(args)
    result: int = parsed.fn(parsed)
    return result


if __name__ == "__main__":
    sys.exit(main())
