"""The InfluxDB side of ``errloop deploy``: the databases the generated tasks use.

errloop's own database (``errloop``, where the tasks write events, metrics, alerts and
decisions) is created when missing — ``CREATE DATABASE`` is idempotent and never touches
data, so a deploy that fails later leaves it in place. The databases the policies *read*
(their request metrics: what the service's Telegraf writes) belong to the user: errloop
only checks that each exists with its retention policy and says which policy reads a
missing one (its SLO and decision tasks find no data until it does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from errloop.deploy.generate import Bundle, DatabaseUse


class InfluxError(RuntimeError):
    pass


@dataclass(frozen=True)
class DatabaseCheck:
    use: DatabaseUse
    database_exists: bool
    rp_exists: bool


def _query(url: str, q: str, method: str = "GET", timeout: float = 10.0) -> list[dict[str, Any]]:
    try:
        resp = httpx.request(method, f"{url.rstrip('/')}/query", params={"q": q}, timeout=timeout)
    except httpx.HTTPError as e:
        raise InfluxError(f"InfluxDB at {url} does not answer: {e}") from None
    if resp.status_code != 200:
        raise InfluxError(f"InfluxDB at {url}: {q!r} failed: HTTP {resp.status_code} {resp.text[:200]}")
    results: list[dict[str, Any]] = resp.json().get("results", [])
    for r in results:
        if "error" in r:
            raise InfluxError(f"InfluxDB at {url}: {q!r} failed: {r['error']}")
    return results


def _names(results: list[dict[str, Any]]) -> set[str]:
    return {str(row[0]) for r in results for s in r.get("series", []) for row in s.get("values", [])}


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check(url: str, bundle: Bundle) -> list[DatabaseCheck]:
    """Which of the bundle's databases and retention policies exist."""
    dbs = _names(_query(url, "SHOW DATABASES"))
    out = []
    for use in bundle.databases:
        rps = (
            _names(_query(url, f"SHOW RETENTION POLICIES ON {_ident(use.database)}")) if use.database in dbs else set()
        )
        out.append(DatabaseCheck(use, use.database in dbs, use.retention_policy in rps))
    return out


def plan(url: str, bundle: Bundle) -> list[str]:
    """``errloop deploy --dry-run`` lines for InfluxDB (``+`` create, ``=`` there, ``!`` missing, not ours)."""
    lines = []
    for c in check(url, bundle):
        u = c.use
        where = f"{u.database}.{u.retention_policy}"
        if c.database_exists and c.rp_exists:
            lines.append(f"= database {where} ({u.why})")
        elif u.create:
            lines.append(f"+ database {u.database} ({u.why})")
        else:
            lines.append(f"! database {where} does not exist ({u.why}; written by the service's Telegraf, not errloop)")
    return lines


def ensure(url: str, bundle: Bundle, say: Callable[[str], None] = print) -> list[str]:
    """Create errloop's own missing databases; return a warning per missing database a policy reads."""
    warnings = []
    for c in check(url, bundle):
        u = c.use
        if c.database_exists and c.rp_exists:
            continue
        if u.create and u.retention_policy == "autogen":
            _query(url, f"CREATE DATABASE {_ident(u.database)}", method="POST")
            say(f"  database {u.database} created")
        else:
            warnings.append(
                f"database {u.database}.{u.retention_policy} does not exist ({u.why}); "
                "its tasks find no data until the service's Telegraf writes it"
            )
    return warnings
