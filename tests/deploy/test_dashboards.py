"""Chronograf dashboards generated from policies: schema, grid, queries and escaping (no stack).

The real proof that every cell returns series is tests/deploy/test_dashboards_stack.py;
these check what can be checked on the text: Chronograf's dashboard schema
(TICK-STACK.md, "Chronograf"), a 12-column grid without overlaps, InfluxQL that reads
errloop's measurements with the dashboard's time range, and that no policy string can
change a query's meaning.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from errloop.deploy.generate import dashboards as dash
from errloop.deploy.generate import generate, slo_tickscript, write
from errloop.deploy.generate.tick import UnsafeValue
from errloop.deploy.install import load_policies
from errloop.rules import contract
from errloop.rules.policy import MetricsSource, Policy, bundled_policy_paths, load_policy

CELL_KEYS = {
    "i",
    "x",
    "y",
    "w",
    "h",
    "name",
    "queries",
    "axes",
    "type",
    "colors",
    "legend",
    "tableOptions",
    "fieldOptions",
    "timeFormat",
    "decimalPlaces",
    "note",
    "noteVisibility",
}
QUERY_KEYS = {"query", "queryConfig", "source", "type"}
QUERY_CONFIG_KEYS = {
    "database",
    "measurement",
    "retentionPolicy",
    "fields",
    "tags",
    "groupBy",
    "areTagsAccepted",
    "rawText",
    "range",
    "shifts",
}
AXIS_KEYS = {"bounds", "label", "prefix", "suffix", "base", "scale"}
MEASUREMENTS = {contract.CLASSIFIED, contract.METRICS, contract.ACTIONS, contract.DECISIONS}
# every name a query may quote: the contract's, plus what the generated tasks write into errloop_metrics
CONTRACT_NAMES = (
    set(contract.CLASSIFIED_TAGS)
    | set(contract.CLASSIFIED_FIELDS)
    | set(contract.ACTION_TAGS)
    | set(contract.ACTION_FIELDS)
    | set(contract.DECISION_TAGS)
    | set(contract.DECISION_FIELDS)
    | MEASUREMENTS
    | {contract.DATABASE, contract.RETENTION_POLICY, contract.ERRORS_TOTAL, contract.BURN_RATE, contract.SLI_TOTAL}
    | {dash.SLI_TAG, dash.SLO_WINDOW_TAG, "error_code"}
)
MACRO = re.compile(r":[A-Za-z0-9_-]+:")

POLICY = """apiVersion: errloop/v1
kind: Policy
metadata: {name: p1, description: Orders API}
spec:
  service: SERVICE
  alert: {threshold: 3, window: 1m}
  slo: {window: 30d, success_rate: 99.9, latency: {objective: 99, threshold: 300ms}}
"""


def policy(service: str = "orders", name: str = "p1") -> Policy:
    return load_policy(POLICY.replace("SERVICE", service).replace("p1", name), f"{name}.yaml")


def bundled_boards() -> dict[str, dict[str, object]]:
    bundle = generate(load_policies(bundled_policy_paths()))
    return {k: json.loads(v) for k, v in bundle.files.items() if k.startswith(f"{dash.DIRECTORY}/")}


def all_boards() -> list[dict[str, object]]:
    return [
        *bundled_boards().values(),
        dash.dashboard("orders", [policy()]),
        dash.dashboard("*", [policy("'*'")]),
    ]


def scan(query: str) -> tuple[str, list[tuple[str, str]]]:
    """InfluxQL's scanner for quoted tokens (influxql ScanString): the text with each quoted
    token replaced by ``<q>`` and the tokens, decoded, with their quote."""
    skeleton, tokens, i = [], [], 0
    while i < len(query):
        ch = query[i]
        if ch not in "'\"":
            skeleton.append(ch)
            i += 1
            continue
        quote, buf, i = ch, [], i + 1
        while True:
            c = query[i]
            assert c != "\n", f"raw newline inside a quoted token: {query!r}"
            if c == quote:
                i += 1
                break
            if c == "\\":
                nxt = query[i + 1]
                assert nxt in "n\\\"'", f"bad escape \\{nxt} in {query!r}"
                buf.append("\n" if nxt == "n" else nxt)
                i += 2
                continue
            buf.append(c)
            i += 1
        tokens.append((quote, "".join(buf)))
        skeleton.append(f"<{quote}>")
    return "".join(skeleton), tokens


def test_bundled_policies_get_one_dashboard_per_service() -> None:
    boards = bundled_boards()
    services = {p.service for p in load_policies(bundled_policy_paths())}
    assert set(boards) == {f"dashboards/{s}.json" for s in services}
    for path, board in boards.items():
        assert board["name"] == f"errloop · {Path(path).stem}"


@pytest.mark.parametrize("board", all_boards(), ids=lambda b: str(b["name"]))
def test_schema_of_every_cell(board: dict[str, object]) -> None:
    assert {"name", "cells", "templates"} <= set(board)
    cells = board["cells"]
    assert isinstance(cells, list) and cells
    for cell in cells:
        assert set(cell) == CELL_KEYS, cell["name"]
        assert cell["type"] in dash.CELL_TYPES
        assert cell["name"]
        assert set(cell["axes"]) <= {"x", "y", "y2"}
        for axis in cell["axes"].values():
            assert set(axis) == AXIS_KEYS
            assert axis["scale"] in ("linear", "log") and axis["base"] in ("10", "2")
            assert len(axis["bounds"]) == 2 and all(isinstance(b, str) for b in axis["bounds"])
        for color in cell["colors"]:
            assert color["type"] in ("min", "max", "threshold", "text", "background", "scale")
            assert re.fullmatch(r"#[0-9A-Fa-f]{6}", color["hex"])
        legend = cell["legend"]
        assert legend == {} or (legend["type"] == "static" and legend["orientation"] in ("top", "bottom"))
        assert cell["noteVisibility"] in ("default", "showWhenNoData")
        assert set(cell["decimalPlaces"]) == {"isEnforced", "digits"}
        assert all(set(f) == {"internalName", "displayName", "visible"} for f in cell["fieldOptions"])
        assert cell["queries"], f"{cell['name']}: Chronograf shows 'Add Data' for a cell without a query"
        for q in cell["queries"]:
            assert set(q) == QUERY_KEYS and q["type"] == "influxql"
            assert set(q["queryConfig"]) == QUERY_CONFIG_KEYS
            assert q["queryConfig"]["rawText"] == q["query"]
        if cell["type"] == "note":
            assert cell["note"] and [q["query"] for q in cell["queries"]] == [""]
        else:
            assert all(q["query"] for q in cell["queries"])
            # instead of Chronograf's bare "No Results": what writes this data, so a user knows what to check
            assert cell["noteVisibility"] == "showWhenNoData" and cell["note"], cell["name"]
        if cell["type"] == "table":
            visible = [f for f in cell["fieldOptions"] if f["visible"]]
            assert visible and all(f["displayName"] for f in visible)
    ids = [c["i"] for c in cells]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("board", all_boards(), ids=lambda b: str(b["name"]))
def test_cells_fill_a_12_column_grid_without_overlaps(board: dict[str, object]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for cell in board["cells"]:  # type: ignore[attr-defined]
        x, y, w, h = cell["x"], cell["y"], cell["w"], cell["h"]
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1
        assert x + w <= dash.GRID_COLUMNS, cell["name"]
        for cx in range(x, x + w):
            for cy in range(y, y + h):
                assert (cx, cy) not in taken, f"{cell['name']} overlaps {taken[(cx, cy)]}"
                taken[(cx, cy)] = cell["name"]
    # no holes: every row of the grid is used to its full width
    rows = {cy for _, cy in taken}
    for cy in rows:
        assert all((cx, cy) in taken for cx in range(dash.GRID_COLUMNS)), f"hole in row {cy}"


@pytest.mark.parametrize("board", all_boards(), ids=lambda b: str(b["name"]))
def test_every_query_reads_errloop_data_in_the_dashboard_range(board: dict[str, object]) -> None:
    variables = {t["tempVar"] for t in board["templates"]}  # type: ignore[attr-defined]
    for text in dash.queries(board):
        if not text:
            continue
        skeleton, tokens = scan(text)
        assert skeleton.startswith("SELECT "), text
        assert skeleton.count("(") == skeleton.count(")"), text
        # FROM "errloop"."autogen".<a contract measurement>
        sources = re.findall(r'FROM <">\.<">\.<">', skeleton)
        assert sources, text
        idents = [v for q, v in tokens if q == '"']
        aliases = set(re.findall(r'AS "([^"]+)"', text))
        for i, v in enumerate(idents):
            assert v in CONTRACT_NAMES or v in aliases, f"{v!r} is neither a contract name nor an alias: {text}"
        measurements = {idents[i + 2] for i in range(len(idents) - 2) if idents[i : i + 2] == ["errloop", "autogen"]}
        assert measurements and measurements <= MEASUREMENTS, text
        assert f"time > {dash.DASHBOARD_TIME} AND time < {dash.UPPER_DASHBOARD_TIME}" in text
        if "GROUP BY time(" in text:
            assert f"GROUP BY time({dash.INTERVAL})" in text
        used = set(MACRO.findall(skeleton))
        assert used <= {dash.DASHBOARD_TIME, dash.UPPER_DASHBOARD_TIME, dash.INTERVAL} | variables, text
        for var in variables:  # tagValue variables: Chronograf quotes them, so never inside quotes
            assert all(var not in v for _, v in tokens)
            assert var in skeleton


def test_a_named_service_filters_on_its_literal_and_every_service_gets_a_variable() -> None:
    named = dash.dashboard("orders", [policy()])
    assert named["templates"] == []
    assert all("\"service\" = 'orders'" in q for q in dash.queries(named) if q)
    every = dash.dashboard("*", [policy("'*'")])
    (tpl,) = every["templates"]
    assert tpl["tempVar"] == dash.SERVICE_VAR and tpl["type"] == "tagValues"
    assert tpl["query"]["measurement"] == contract.CLASSIFIED and tpl["query"]["tagKey"] == "service"
    assert all(f'"service" = {dash.SERVICE_VAR}' in q for q in dash.queries(every) if q)
    assert every["name"] == "errloop · every service"
    assert dash.file_name("*") == "dashboards/_all-services.json"


def test_burn_rate_cells_only_with_an_slo_and_on_the_sli_tags_the_slo_task_writes() -> None:
    with_slo = policy()
    without = replace(with_slo, slo=None)
    assert not [c for c in dash.dashboard("orders", [without])["cells"] if c["name"].startswith("Burn rate")]
    burn = [c for c in dash.dashboard("orders", [with_slo])["cells"] if c["name"].startswith("Burn rate")]
    assert len(burn) == 2
    script = slo_tickscript(with_slo, "p1.yaml")
    for sli, cell in zip((dash.SLI_SUCCESS, dash.SLI_LATENCY), burn, strict=True):
        assert f".tag('{dash.SLI_TAG}', '{sli}')" in script  # what the task writes …
        assert f"\"{dash.SLI_TAG}\" = '{sli}'" in cell["queries"][0]["query"]  # … is what the cell reads
        assert f'GROUP BY time({dash.INTERVAL}), "{dash.SLO_WINDOW_TAG}"' in cell["queries"][0]["query"]
    assert ".tag('slo_window'," in script
    # a service tag of the request metrics other than "service" is the tag the burn rates carry
    other = replace(with_slo, metrics=MetricsSource(service_tag="app"))
    (q, *_) = [c["queries"][0]["query"] for c in dash.dashboard("orders", [other])["cells"] if "Burn" in c["name"]]
    assert "\"app\" = 'orders'" in q


def test_policies_of_one_service_share_a_dashboard() -> None:
    boards = dash.dashboards([policy(name="a1"), replace(policy(name="b2"), slo=None), policy("billing", "c3")])
    assert set(boards) == {"dashboards/orders.json", "dashboards/billing.json"}
    note = next(c["note"] for c in boards["dashboards/orders.json"]["cells"] if c["type"] == "note")
    assert "a1" in note and "b2" in note
    # the same SLI of two policies is drawn once
    assert sum(c["name"].startswith("Burn rate") for c in boards["dashboards/orders.json"]["cells"]) == 2
    # SLIs of request metrics tagged differently are drawn apart, two a row, a lone one across the row
    tagged = [replace(policy(name=f"t{i}"), metrics=MetricsSource(service_tag=f"svc{i}")) for i in range(2)]
    board = dash.dashboard("orders", [*tagged, replace(policy(name="t9"), slo=replace(tagged[0].slo, latency=None))])
    burn = [c for c in board["cells"] if c["name"].startswith("Burn rate")]
    assert len(burn) == 5 and [c["w"] for c in burn] == [6, 6, 6, 6, 12]
    with pytest.raises(ValueError, match="must watch"):
        dash.dashboard("orders", [policy("billing")])


HOSTILE = [
    "x' OR time > 0 --",
    'x\') GROUP BY "fingerprint" --',
    'a"b',
    "back\\slash",
    "ends with \\",
    "new\nline",
    "'; DROP DATABASE errloop",
    "名前-ü",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_service_name_stays_one_literal(name: str) -> None:
    benign = dash.dashboard("svc", [replace(policy(), service="svc")])
    hostile = dash.dashboard(name, [replace(policy(), service=name)])
    for good, bad in zip(dash.queries(benign), dash.queries(hostile), strict=True):
        if not good:
            continue
        good_skel, good_tokens = scan(good)
        bad_skel, bad_tokens = scan(bad)
        assert bad_skel == good_skel  # the same query, only the literal differs
        assert [v for _, v in bad_tokens] == [name if (q, v) == ("'", "svc") else v for q, v in good_tokens]


@pytest.mark.parametrize("name", ["a:service:b", "x:dashboardTime:", "::", "a\tb", "a\x00b", "a\x7fb"])
def test_a_service_name_chronograf_would_rewrite_is_refused(name: str) -> None:
    with pytest.raises(UnsafeValue):
        dash.dashboard(name, [replace(policy(), service=name)])


def test_a_hostile_tag_name_stays_one_identifier() -> None:
    odd = replace(policy(), metrics=MetricsSource(service_tag="s\" = 'x' OR \"a"))
    (q, *_) = [c["queries"][0]["query"] for c in dash.dashboard("orders", [odd])["cells"] if "Burn" in c["name"]]
    _, tokens = scan(q)
    assert ('"', "s\" = 'x' OR \"a") in tokens


@pytest.mark.parametrize("service", ["../etc", "a/b", ".", ".."])
def test_file_names_stay_inside_the_dashboards_folder(service: str) -> None:
    with pytest.raises(UnsafeValue):
        dash.file_name(service)


def test_policy_text_in_the_note_cannot_make_links_or_html() -> None:
    hostile = replace(policy(), name="[x](http://evil.example)<img src=x>")
    (note,) = [c["note"] for c in dash.dashboard("orders", [hostile])["cells"] if c["type"] == "note"]
    assert "](http" not in note.replace("\\]\\(", "")
    assert "<" not in note and "&lt;img src=x&gt;" in note


def test_generation_is_deterministic_and_json_renders_as_written() -> None:
    a = dash.dashboards([policy()], "1.0")
    b = dash.dashboards([policy()], "1.0")
    assert a == b
    text = dash.render(a["dashboards/orders.json"])
    assert text.endswith("\n") and json.loads(text) == a["dashboards/orders.json"]


def test_write_puts_dashboards_next_to_tasks_and_removes_stale_ones(tmp_path: Path) -> None:
    write(generate([policy(), policy("billing", "p2")]), tmp_path)
    assert sorted(p.name for p in (tmp_path / "dashboards").iterdir()) == ["billing.json", "orders.json"]
    assert (tmp_path / "tasks").is_dir()
    write(generate([policy()]), tmp_path)
    assert sorted(p.name for p in (tmp_path / "dashboards").iterdir()) == ["orders.json"]
