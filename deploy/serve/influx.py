"""errloop serve's edge to InfluxDB 1.x.

Reads are InfluxQL over ``GET /query`` (httpx; ``epoch=ns``, chunked, bound parameters for
every value that comes from outside). Writes go through ``influxdb-client``'s synchronous
write API to the v2-compatible ``/api/v2/write`` (bucket ``db/rp``, token ``""``, org ``-``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from errloop.deploy.serve.actions import ActionRecord
from errloop.deploy.serve.model import valid_event_id
from errloop.rules import contract

Row = dict[str, object]  # one point: "time" (ns) plus its tags and fields

TRACE_MEASUREMENTS = (contract.EVENTS, contract.CLASSIFIED, contract.ALERTS, contract.ACTIONS)
ACTION_LEDGER_COLUMNS = ("event_id", "csv_ns", *contract.ACTION_TAGS)  # what the ledger reads back
ID_CHUNK = 200  # event ids bound per query


class InfluxError(RuntimeError):
    """InfluxDB could not be reached or refused a query or write (the text holds no credentials)."""


def redact(text: str) -> str:
    """Text with the user:password part of any URL replaced by ``***``."""
    return re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@", r"\1***@", text)


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes, escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Series:
    """One series of an InfluxQL result."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[object]]

    def rows(self) -> Iterator[Row]:
        """Each value row as a mapping (the series' tags included); None values left out."""
        for vals in self.values:
            row: Row = dict(self.tags)
            for col, v in zip(self.columns, vals, strict=False):
                if v is not None:
                    row[col] = v
            yield row


def parse_query_response(text: str) -> list[list[Series]]:
    """Series per statement of a ``/query`` response, chunked (several JSON documents) or not.

    Raises InfluxError for a statement error or a response that is not InfluxDB's JSON.
    """
    decoder = json.JSONDecoder()
    per_statement: dict[int, list[Series]] = {}
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            break
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except ValueError as exc:
            raise InfluxError(f"InfluxDB answered something that is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise InfluxError("InfluxDB answered an unexpected JSON document")
        if "error" in doc:
            raise InfluxError(f"InfluxDB query error: {doc['error']}")
        for result in doc.get("results") or []:
            if result.get("error"):
                raise InfluxError(f"InfluxDB statement error: {result['error']}")
            sid = int(result.get("statement_id", 0))
            bucket = per_statement.setdefault(sid, [])
            for s in result.get("series") or []:
                bucket.append(
                    Series(
                        name=str(s.get("name", "")),
                        tags={str(k): str(v) for k, v in (s.get("tags") or {}).items()},
                        columns=[str(c) for c in s.get("columns") or []],
                        values=[list(v) for v in s.get("values") or []],
                    )
                )
    if not per_statement:
        return []
    return [per_statement.get(i, []) for i in range(max(per_statement) + 1)]


class InfluxReader:
    """InfluxQL reads from one database."""

    def __init__(self, url: str, db: str = contract.DATABASE, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.db = db
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.close()

    def query(self, q: str, params: Mapping[str, str | int] | None = None) -> list[list[Series]]:
        """Run InfluxQL (``;``-separated statements); values from outside go in ``params`` ($name)."""
        query: dict[str, str] = {"db": self.db, "q": q, "epoch": "ns", "chunked": "true", "chunk_size": "10000"}
        if params:
            query["params"] = json.dumps(dict(params))
        try:
            resp = self._http.get(f"{self.url}/query", params=query)
        except httpx.HTTPError as exc:
            msg = f"InfluxDB at {redact(self.url)} unreachable: {type(exc).__name__}: {redact(str(exc))}"
            raise InfluxError(msg) from None
        if resp.status_code != 200:
            raise InfluxError(f"InfluxDB /query answered {resp.status_code}: {redact(resp.text[:300])}")
        return parse_query_response(resp.text)

    def select_since(
        self,
        measurement: str,
        since_ns: int,
        columns: Sequence[str] | None = None,
        event_ids: Sequence[str] | None = None,
    ) -> list[Row]:
        """Points of a measurement newer than ``since_ns``, oldest first.

        ``columns`` limits what is read; ``event_ids`` (validated, then bound as $e0, $e1, …)
        limits it to those events.
        """
        cols = "*" if columns is None else ", ".join(quote_ident(c) for c in columns)
        # identifiers are quoted, the bound is an int, ids are bound parameters: nothing
        # from outside is interpolated into the query text
        base = f"SELECT {cols} FROM {quote_ident(measurement)} WHERE time > {int(since_ns)}"  # noqa: S608
        if event_ids is None:
            return [row for s in _first(self.query(base)) for row in s.rows()]
        ids = [e for e in dict.fromkeys(event_ids) if valid_event_id(e)]
        rows: list[Row] = []
        for start in range(0, len(ids), ID_CHUNK):
            names = {f"e{i}": eid for i, eid in enumerate(ids[start : start + ID_CHUNK])}
            cond = " OR ".join(f"{quote_ident('event_id')} = ${n}" for n in names)
            rows += [row for s in _first(self.query(f"{base} AND ({cond})", names)) for row in s.rows()]
        return sorted(rows, key=_time_key)

    def action_rows(self, since_ns: int) -> list[Row]:
        """What the ledger needs of errloop_actions points newer than ``since_ns``."""
        return self.select_since(contract.ACTIONS, since_ns, ACTION_LEDGER_COLUMNS)

    def alert_event_ids(self, since_ns: int) -> list[str]:
        """Event ids of errloop_alerts points newer than ``since_ns`` (a cheap first look)."""
        rows = self.select_since(contract.ALERTS, since_ns, ("event_id",))
        return [str(r["event_id"]) for r in rows if "event_id" in r]

    def alert_rows(self, since_ns: int, event_ids: Sequence[str] | None = None) -> list[Row]:
        """errloop_alerts points newer than ``since_ns`` (of these events only, if given)."""
        return self.select_since(contract.ALERTS, since_ns, event_ids=event_ids)

    def event_rows(self, event_id: str) -> dict[str, list[Row]]:
        """Every point about one event in each measurement of its life, oldest first."""
        if not valid_event_id(event_id):
            raise ValueError("malformed event id")
        where = f" WHERE {quote_ident('event_id')} = $event_id"
        # the id travels as a bound parameter ($event_id), never inside the query text
        q = ";".join(f"SELECT * FROM {quote_ident(m)}{where}" for m in TRACE_MEASUREMENTS)  # noqa: S608
        results = self.query(q, {"event_id": event_id})
        out: dict[str, list[Row]] = {}
        for i, m in enumerate(TRACE_MEASUREMENTS):
            series = results[i] if i < len(results) else []
            out[m] = sorted((r for s in series for r in s.rows()), key=_time_key)
        return out


def _first(results: list[list[Series]]) -> list[Series]:
    return results[0] if results else []


def _time_key(row: Row) -> int:
    t = row.get("time")
    return t if isinstance(t, int) else 0


class ActionStore(Protocol):
    """What the recorder and the catch-up loop need from InfluxDB."""

    def write_actions(self, records: Sequence[ActionRecord]) -> None: ...

    def action_rows(self, since_ns: int) -> list[Row]: ...

    def alert_event_ids(self, since_ns: int) -> list[str]: ...

    def alert_rows(self, since_ns: int, event_ids: Sequence[str] | None = None) -> list[Row]: ...

    def event_rows(self, event_id: str) -> dict[str, list[Row]]: ...

    def close(self) -> None: ...


class InfluxStore(InfluxReader):
    """Reads with InfluxQL, writes action points with influxdb-client (synchronous)."""

    def __init__(
        self,
        url: str,
        db: str = contract.DATABASE,
        rp: str = contract.RETENTION_POLICY,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(url, db, timeout)
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.bucket = f"{db}/{rp}"
        self._client: Any = InfluxDBClient(url=self.url, token="", org="-", timeout=int(timeout * 1000))
        self._write: Any = self._client.write_api(write_options=SYNCHRONOUS)

    def write_actions(self, records: Sequence[ActionRecord]) -> None:
        """Write action points (or their csv_ns marks) in one request; raises InfluxError."""
        if not records:
            return
        points = [
            {"measurement": contract.ACTIONS, "tags": r.tags, "fields": r.fields, "time": r.time_ns} for r in records
        ]
        try:
            self._write.write(bucket=self.bucket, org="-", record=points, write_precision="ns")
        except Exception as exc:  # influxdb-client raises ApiException, urllib3 errors, OSError
            raise InfluxError(f"InfluxDB write failed: {type(exc).__name__}: {redact(str(exc))[:300]}") from None

    def close(self) -> None:
        """Close both clients."""
        super().close()
        self._client.close()
