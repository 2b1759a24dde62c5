"""What an error is about: gRPC status, SQL statement and state, HTTP route — pure functions.

The event dimensions the classifier and the metric tasks group by, read from a record's
structured keys or from the error text the Go libraries print:

- :func:`grpc_code_of` / :func:`grpc_code_from`: the gRPC status code, as grpc-go names it
  (``codes.Code.String()``: ``Unavailable``, ``DeadlineExceeded``, …, and ``OK``);
- :func:`sql_digest` / :func:`sql_digest_from`: a SQL statement with its literals replaced
  by ``?`` (bounded, linear time);
- :func:`sql_state_of` / :func:`sql_state_from`: the SQLSTATE (Postgres, MySQL) and the
  driver's own error number (MySQL's ``1062``);
- :func:`route_of` / :func:`operation_of`: a URL path as a route of bounded cardinality.

Every function takes any text (hostile too: megabyte lines, unterminated quotes) and
returns ``""`` when it finds nothing; none raises. No regex here can backtrack more than
linearly (character classes, fixed words, alternatives that differ in their first
character; the one nested pattern, ``_WORD``, only ever sees 32 characters), the SQL
scanner skips quotes and comments with ``str.find``, and long inputs are cut before
scanning: time is linear in the input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from errloop.telegraf.errlog.mask import HTTP_METHODS, MAX_ROUTE_CHARS, MAX_ROUTE_SEGMENTS

# --- gRPC ------------------------------------------------------------------------------------

GRPC_CODES: Final = (
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
)
"""The 17 gRPC codes by number (0–16), spelled as grpc-go's ``codes.Code.String()`` prints them
(google.golang.org/grpc codes/code_string.go): the spelling ``grpc_code`` is stored in."""

GRPC_CODE_KEYS: Final = (
    "grpc.code",  # go-grpc-middleware logging (v1 grpc_zap/grpc_logrus/grpc_zerolog, v2 logging): code.String()
    "grpc_code",
    "grpcCode",
    "grpc.status_code",
    "rpc.grpc.status_code",  # OpenTelemetry semantic conventions: the number
    "grpc_status_code",
    "grpc.status",
)
"""Keys whose value is a gRPC code: a name (any of grpc-go's, the proto's UPPER_SNAKE, any case) or 0–16."""
GENERIC_CODE_KEYS: Final = ("code",)
"""Keys taken as a gRPC code only when the value is exactly a code name (Go or UPPER_SNAKE), never a number."""

_GRPC_BY_FOLDED: Final = {name.lower(): name for name in GRPC_CODES} | {"cancelled": "Canceled"}
_GRPC_EXACT: Final = frozenset(GRPC_CODES) | frozenset(
    # the proto / other languages' names: CANCELLED (two Ls), DEADLINE_EXCEEDED, …
    ("CANCELLED", *(re.sub(r"(?<!^)(?=[A-Z])", "_", n).upper() for n in GRPC_CODES if n != "Canceled"))
)
_RPC_ERROR: Final = "rpc error: code = "  # grpc-go internal/status: "rpc error: code = %s desc = %s"
_MAX_STATUS_SCAN: Final = 8  # "rpc error" occurrences looked at in one text


def grpc_code_name(value: object) -> str:
    """The canonical (grpc-go) name of a code given as a name in any spelling or as its number 0–16; else ``""``."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return GRPC_CODES[value] if 0 <= value < len(GRPC_CODES) else ""
    if isinstance(value, float):
        return grpc_code_name(int(value)) if value.is_integer() else ""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if text.isdigit() and len(text) <= 2:
        return grpc_code_name(int(text))
    if len(text) > 24:
        return ""
    return _GRPC_BY_FOLDED.get(text.replace("_", "").lower(), "")


def grpc_code_of(text: str) -> str:
    """The code of the first (outer-most) grpc-go status error in ``text``, else ``""``.

    grpc-go's ``status.Error`` prints ``rpc error: code = Unavailable desc = …``; a wrapped
    error reads outer-most first, so the left-most status is the one the caller saw (a
    server that turns an upstream ``Unavailable`` into ``Internal`` is classified by
    ``Internal``). Old grpc-go printed the number (``code = 14``): mapped to its name.
    Unknown codes (``Code(17)``) are skipped for the next occurrence.
    """
    start = text.find(_RPC_ERROR)
    seen = 0
    while start >= 0 and seen < _MAX_STATUS_SCAN:
        i = start + len(_RPC_ERROR)
        end = text.find(" ", i, i + 24)
        name = text[i:end] if end >= 0 else text[i : i + 24]
        if name in GRPC_CODES:
            return name
        if name.isdigit():  # grpc-go before codes had String() (2016): "rpc error: code = 14 desc = …"
            number = grpc_code_name(name)
            if number:
                return number
        seen += 1
        start = text.find(_RPC_ERROR, i)
    return ""


def grpc_code_from(flat: Mapping[str, object], *texts: str) -> str:
    """The gRPC code of a record: its code keys first (the status the interceptor logged), then its texts in order."""
    for key in GRPC_CODE_KEYS if flat else ():
        value = flat.get(key)
        if value is not None:
            name = grpc_code_name(value)
            if name:
                return name
    for key in GENERIC_CODE_KEYS if flat else ():
        value = flat.get(key)
        if isinstance(value, str) and value in _GRPC_EXACT:
            return grpc_code_name(value)
    for text in texts:
        if text and _RPC_ERROR in text:
            name = grpc_code_of(text)
            if name:
                return name
    return ""


# --- SQL digest ----------------------------------------------------------------------------

SQL_KEYS: Final = (
    "sql",
    "query",
    "statement",
    "stmt",
    "sql_query",
    "sql.query",
    "db.statement",  # OpenTelemetry semantic conventions (before 1.25)
    "db.query.text",  # OpenTelemetry semantic conventions (1.25+)
    "db.sql",
    "db_statement",
)
"""Keys holding a statement; a value counts only when it starts with a SQL verb, and for ``query``,
``statement`` and ``stmt`` (also used for other text) with the verb's next word (``SELECT … FROM``)."""
MAX_SQL_DIGEST_CHARS: Final = 1024
MAX_SQL_SCAN_CHARS: Final = 16_384
"""Characters of a statement read; a longer one gives the digest of its head, ending in ``…``."""
CUT: Final = "…"

_SQL_START: Final = frozenset(
    (
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "WITH",
        "REPLACE",
        "MERGE",
        "UPSERT",
        "CREATE",
        "ALTER",
        "DROP",
        "TRUNCATE",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "SET",
        "SHOW",
        "CALL",
        "EXEC",
        "EXECUTE",
        "EXPLAIN",
        "COPY",
        "GRANT",
        "REVOKE",
        "LOCK",
        "VALUES",
        "DECLARE",
        "FETCH",
        "VACUUM",
        "ANALYZE",
        "PREPARE",
    )
)
_KEYWORDS: Final = _SQL_START | frozenset(
    """FROM WHERE AND OR NOT IN IS NULL LIKE ILIKE BETWEEN INTO RETURNING JOIN LEFT RIGHT INNER OUTER
    FULL CROSS ON USING GROUP BY ORDER HAVING LIMIT OFFSET AS DISTINCT UNION ALL EXISTS CASE WHEN
    THEN ELSE END ASC DESC CONFLICT DO NOTHING FOR SHARE NOWAIT SKIP LOCKED TABLE INDEX DEFAULT TRUE
    FALSE DUPLICATE KEY IGNORE LATERAL ANY SOME ROW ROWS ONLY FETCH NEXT FIRST EXCEPT INTERSECT""".split()
)
# free text: upper-case verbs only, each with a word that must follow it (else English prose)
_TEXT_VERBS: Final = (
    ("SELECT ", " FROM "),
    ("INSERT INTO ", ""),
    ("UPDATE ", " SET "),
    ("DELETE FROM ", ""),
    ("REPLACE INTO ", ""),
    ("UPSERT INTO ", ""),
    ("MERGE INTO ", " USING "),
    ("WITH ", " AS ("),
)
_IDENT: Final = re.compile(r"[A-Za-z_\u00c0-\uffff][A-Za-z0-9_$\u00c0-\uffff]*")
_NUMBER: Final = re.compile(r"0[xX][0-9A-Fa-f]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_OPERATOR: Final = re.compile(r"(?:[<>=!|&+*/%^~@#:]|-(?![\d.]))+")  # "=-1": "=" then the number -1
_DOLLAR_TAG: Final = re.compile(r"\$[A-Za-z_]*\$")
_SPACE: Final = frozenset(" \t\n\r\f\v")
_BEFORE_VALUE: Final = frozenset(("=", "<", ">", "<=", ">=", "<>", "!=", "LIKE", "ILIKE"))
_LITERAL_PREFIX: Final = frozenset(("E", "e", "N", "n", "X", "x", "B", "b", "U&", "u&"))


def _skip_quoted(s: str, i: int, q: str, backslash: bool) -> int:
    """``s[i] == q`` opens a quoted text: the index after its closing quote, or ``len(s)`` when unterminated.

    A doubled quote (``'it''s'``) is part of the text; with ``backslash`` so is ``\\'`` (MySQL,
    Postgres ``E''`` strings; a Postgres standard string ending in a backslash, ``'C:\\'``, then
    runs on to the next quote: the digest is coarser, still bounded). Linear: every character
    is looked at a bounded number of times.
    """
    n = len(s)
    j = i + 1
    while True:
        k = s.find(q, j)
        if k < 0:
            return n
        if backslash:
            b = k - 1
            while b >= j and s[b] == "\\":
                b -= 1
            if (k - 1 - b) % 2 == 1:
                j = k + 1
                continue
        if k + 1 < n and s[k + 1] == q:
            j = k + 2
            continue
        return k + 1


class _Digest:
    """Output tokens with the state for IN-list and VALUES collapsing (one statement)."""

    __slots__ = ("after_tuple", "drop_depth", "gaps", "parens", "pending_comma", "toks", "values_depth")

    def __init__(self) -> None:
        self.toks: list[str] = []
        self.gaps: list[bool] = []  # a space before the token of the same index
        self.parens: list[tuple[int, bool]] = []  # (index of "(" in toks, holds only literals and commas)
        self.values_depth = -1  # paren depth at a VALUES keyword, while its first tuple is read
        self.after_tuple = False  # VALUES' first tuple closed: further ", (…)" tuples are dropped
        self.pending_comma = False
        self.drop_depth = 0  # > 0 while inside a dropped tuple

    def last(self) -> str:
        return self.toks[-1] if self.toks else ""

    def value_position(self) -> bool:
        """Whether a token here is a value: after a comparison, inside a VALUES row or an IN list."""
        if self.last() in _BEFORE_VALUE:
            return True
        if self.values_depth >= 0 and len(self.parens) > self.values_depth:
            return True
        return bool(self.parens) and self.parens[-1][0] >= 1 and self.toks[self.parens[-1][0] - 1] == "IN"

    def push(self, tok: str, spaced: bool) -> None:
        if self.drop_depth:
            if tok == "(":
                self.drop_depth += 1
            elif tok == ")":
                self.drop_depth -= 1
            return
        if self.after_tuple:
            if tok == "," and not self.pending_comma:
                self.pending_comma = True
                return
            if tok == "(" and self.pending_comma:
                self.pending_comma = False
                self.drop_depth = 1
                return
            if self.pending_comma:
                self._emit(",", False)
                self.pending_comma = False
            self.after_tuple = False
        self._emit(tok, spaced)

    def _collapse(self, idx: int) -> None:
        """``IN (?, ?, …`` → ``IN (?`` when the paren at ``idx`` follows IN and holds more than one token."""
        if idx >= 1 and self.toks[idx - 1] == "IN" and len(self.toks) > idx + 2:
            del self.toks[idx + 2 :]
            del self.gaps[idx + 2 :]

    def _emit(self, tok: str, spaced: bool) -> None:
        toks = self.toks
        if self.parens and tok not in ("?", ",", ")"):
            idx, _ = self.parens[-1]
            self.parens[-1] = (idx, False)
        prev = toks[-1] if toks else ""
        if tok == ")":
            if self.parens:
                idx, only_literals = self.parens.pop()
                if only_literals:
                    self._collapse(idx)
                if len(self.parens) == self.values_depth:
                    self.values_depth = -1
                    self.after_tuple = True
            gap = False
        elif tok == "(":
            self.parens.append((len(toks), True))
            # a space before "(" after a keyword, an operator or a comma, or where the statement had one
            gap = bool(toks) and (spaced or prev in _KEYWORDS or prev == "," or _is_operator(prev))
        else:
            if tok == "VALUES":
                self.values_depth = len(self.parens)
            gap = bool(toks) and not (prev in ("(", ".", "::") or tok in (",", ".", ";", "::"))
        toks.append(tok)
        self.gaps.append(gap)

    def text(self, cut: bool) -> str:
        if self.pending_comma:
            self._emit(",", False)
        if self.parens and self.parens[-1][1]:  # an IN list cut or left open before its ")" still collapses
            self._collapse(self.parens[-1][0])
        text = "".join(f" {t}" if g else t for t, g in zip(self.toks, self.gaps, strict=True))
        if cut or len(text) > MAX_SQL_DIGEST_CHARS:
            text = text[: MAX_SQL_DIGEST_CHARS - 1] + CUT
        return text


def _is_operator(tok: str) -> bool:
    return bool(tok) and _OPERATOR.fullmatch(tok) is not None


def _scan(s: str, d: _Digest, embedded: bool) -> int:
    """Tokenise ``s`` into ``d``; returns where it stopped (``len(s)`` unless ``embedded`` met a ``": "``)."""
    n = len(s)
    i = 0
    spaced = False
    while i < n:
        c = s[i]
        if c in _SPACE:
            i += 1
            spaced = True
            continue
        if c == "-" and s.startswith("--", i):  # comment to the end of the line
            k = s.find("\n", i)
            i = n if k < 0 else k + 1
            spaced = True
            continue
        if c == "/" and s.startswith("/*", i):
            k = s.find("*/", i + 2)
            i = n if k < 0 else k + 2
            spaced = True
            continue
        if c == "'":
            i = _skip_quoted(s, i, "'", True)
            d.push("?", spaced)
        elif c == '"':
            end = _skip_quoted(s, i, '"', False)
            closed = end > i + 1 and s[end - 1] == '"' and (end < n or not s.endswith('""', i))
            body = s[i + 1 : end - 1]
            if not closed or end - i > 66 or not _IDENT.fullmatch(body) or d.value_position():
                d.push("?", spaced)  # a MySQL string in double quotes
            else:
                d.push(s[i:end], spaced)  # a Postgres quoted identifier
            i = end
        elif c == "`":
            end = _skip_quoted(s, i, "`", False)
            d.push(s[i:end][:66], spaced)  # a MySQL quoted identifier
            i = end
        elif c.isdigit() or (c == "." and i + 1 < n and s[i + 1].isdigit()):
            m = _NUMBER.match(s, i)
            i = m.end() if m else i + 1
            d.push("?", spaced)
        elif c == "-" and i + 1 < n and (s[i + 1].isdigit() or s[i + 1] == ".") and _unary(d):
            m = _NUMBER.match(s, i + 1)
            i = m.end() if m else i + 1
            d.push("?", spaced)
        elif c == "$":
            tag = _DOLLAR_TAG.match(s, i)
            if tag:  # a dollar-quoted string $$…$$ / $tag$…$tag$
                k = s.find(tag.group(), tag.end())
                i = n if k < 0 else k + len(tag.group())
                d.push("?", spaced)
            else:  # $1: a Postgres bind parameter, the same as MySQL's ?
                j = i + 1
                while j < n and s[j].isdigit():
                    j += 1
                i = max(j, i + 1)
                d.push("?", spaced)
        elif c == "?":
            i += 1
            d.push("?", spaced)
        elif c in "(),;.":
            i += 1
            d.push(c, spaced)
        elif c == ":" and embedded and not d.parens and i + 1 < n and s[i + 1] in _SPACE:
            return i  # "…: " ends a statement inside an error text (Go's wrap separator)
        elif c == ":" and s.startswith("::", i):
            i += 2
            d.push("::", spaced)
        elif c in ":@" and i + 1 < n and (m := _IDENT.match(s, i + 1)) is not None:
            i = m.end()
            d.push(c + m.group(), spaced)  # a named parameter (:id, @p1) or a MySQL variable
        elif (m := _IDENT.match(s, i)) is not None:
            word = m.group()
            i = m.end()
            if i < n and s[i] == "'" and word in _LITERAL_PREFIX:
                i = _skip_quoted(s, i, "'", True)  # E'…', N'…', X'…', B'…'
                d.push("?", spaced)
            else:
                upper = word.upper()
                d.push(upper if upper in _KEYWORDS else word, spaced)
        elif (m := _OPERATOR.match(s, i)) is not None:
            i = m.end()
            d.push(m.group(), spaced)
        else:
            i += 1
            d.push(c, spaced)
        spaced = False
    return n


def _unary(d: _Digest) -> bool:
    """Whether a ``-`` here is a sign: after an operator, ``(``, ``,``, a keyword or at the start."""
    prev = d.last()
    return not prev or prev in ("(", ",") or prev in _KEYWORDS or _is_operator(prev)


def sql_digest(statement: str) -> str:
    """The statement with its literals replaced by ``?``: what stays the same across executions.

    Strings (``'…'`` with ``''`` and ``\\'`` escapes, ``E'…'``, ``X'…'``, dollar quotes), numbers
    (also negative, decimal, exponent and hex), bind parameters (``$1``, ``?``) and MySQL's
    double-quoted strings become ``?``; an ``IN (…)`` list of them becomes ``IN (?)``; the rows
    after the first tuple of ``VALUES`` are dropped; comments are removed, white space
    collapsed, keywords upper-cased and spaced one way (``a = ?``, ``(?, ?)``, ``f(x)``,
    ``t.col``, ``x::text``). A Postgres ``"identifier"`` stays unless it stands where a value
    does (after a comparison, in a ``VALUES`` row or an ``IN`` list).
    At most :data:`MAX_SQL_DIGEST_CHARS` characters (cut ones end in ``…``); only the first
    :data:`MAX_SQL_SCAN_CHARS` of the statement are read. ``""`` for an empty statement.
    """
    cut = len(statement) > MAX_SQL_SCAN_CHARS
    d = _Digest()
    _scan(statement[:MAX_SQL_SCAN_CHARS] if cut else statement, d, embedded=False)
    return d.text(cut)


# the word a statement needs after its verb, for keys that also hold other text ("query": search terms)
_AMBIGUOUS_SQL_KEYS: Final = frozenset(("query", "statement", "stmt"))
_NEEDS: Final = {
    verb: re.compile(rf"\s{word}[\s(]", re.IGNORECASE)
    for verb, word in (
        ("SELECT", "FROM"),
        ("INSERT", "INTO"),
        ("UPDATE", "SET"),
        ("DELETE", "FROM"),
        ("WITH", "AS"),
        ("REPLACE", "INTO"),
        ("UPSERT", "INTO"),
        ("MERGE", "USING"),
    )
}
_ALONE: Final = frozenset(("BEGIN", "COMMIT", "ROLLBACK"))
_LETTER: Final = re.compile(r"[A-Za-z]")


def _looks_like_sql(text: str, strict: bool) -> bool:
    """Whether a key's value is a statement: its first word is a SQL verb; ``strict`` (a key that
    may hold other text) also wants the verb's next word (``SELECT … FROM``, ``UPDATE … SET``, …)
    or a lone ``BEGIN``/``COMMIT``/``ROLLBACK``, or ``SELECT`` of no names (``SELECT 1``)."""
    start = 0
    n = len(text)
    while start < n and (text[start] in _SPACE or text[start] == "("):
        start += 1
    m = _IDENT.match(text, start)
    verb = m.group().upper() if m is not None else ""
    if verb not in _SQL_START or m is None:
        return False
    if not strict:
        return True
    rest = text[m.end() : m.end() + MAX_SQL_SCAN_CHARS]
    need = _NEEDS.get(verb)
    if need is None:
        return verb in _ALONE and not rest.strip(" ;\t\n")
    return need.search(rest) is not None or (verb == "SELECT" and _LETTER.search(rest, 0, 64) is None)


def _is_word_start(text: str, i: int) -> bool:
    return i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")


def statement_in(text: str) -> tuple[int, int]:
    """Where a statement embedded in an error text starts, and the quote that encloses it (or ``-1``).

    Only upper-case verbs count in free text, each with the word that must follow it
    (``SELECT … FROM``, ``UPDATE … SET``, ``INSERT INTO``, ``DELETE FROM``, ``WITH … AS (``, …),
    so English prose ("failed to update user") is not SQL. The left-most statement wins.
    Returns ``(-1, -1)`` when there is none.
    """
    best = -1
    for verb, needs in _TEXT_VERBS:
        i = text.find(verb)
        tries = 0
        while i >= 0 and tries < 4 and not (_is_word_start(text, i) and (not needs or text.find(needs, i) >= 0)):
            i = text.find(verb, i + 1)
            tries += 1
        if tries < 4 and i >= 0 and (best < 0 or i < best):
            best = i
    if best < 0:
        return -1, -1
    quote = best - 1 if best > 0 and text[best - 1] == '"' else -1
    return best, quote


def sql_in_text(text: str) -> str:
    """The digest of the statement an error text embeds (see :func:`statement_in`), else ``""``.

    A statement in Go's ``%q`` quotes ends at the closing quote (``\\"`` unescaped);
    otherwise it ends at the first ``": "`` outside parentheses (the next wrap link) or
    at the end of the text.
    """
    start, quote = statement_in(text)
    if start < 0:
        return ""
    if quote >= 0:
        end = _skip_go_quoted(text, quote)
        body = text[start : end - 1] if end > start and text[end - 1] == '"' else text[start:end]
        body = body[: MAX_SQL_SCAN_CHARS + 1]
        body = body.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")
        return sql_digest(body)
    body = text[start : start + MAX_SQL_SCAN_CHARS]
    d = _Digest()
    _scan(body, d, embedded=True)
    return d.text(len(text) - start > MAX_SQL_SCAN_CHARS and len(body) == MAX_SQL_SCAN_CHARS)


def _skip_go_quoted(s: str, i: int) -> int:
    """``s[i] == '"'`` opens a Go ``%q`` string: the index after its closing quote (``\\"`` escapes),
    looked for in the next :data:`MAX_SQL_SCAN_CHARS` characters (else that limit)."""
    n = min(len(s), i + 1 + MAX_SQL_SCAN_CHARS + 1)
    j = i + 1
    while True:
        k = s.find('"', j, n)
        if k < 0:
            return n
        b = k - 1
        while b >= j and s[b] == "\\":
            b -= 1
        if (k - 1 - b) % 2 == 1:
            j = k + 1
            continue
        return k + 1


def sql_digest_from(flat: Mapping[str, object], *texts: str) -> str:
    """The digest of a record's statement: its SQL keys first (values that start like SQL), then its texts in order."""
    for key in SQL_KEYS if flat else ():
        value = flat.get(key)
        if isinstance(value, str) and value and _looks_like_sql(value, key in _AMBIGUOUS_SQL_KEYS):
            digest = sql_digest(value)
            if digest:
                return digest
    for text in texts:
        if text and _maybe_sql(text):
            digest = sql_in_text(text)
            if digest:
                return digest
    return ""


def _maybe_sql(text: str) -> bool:
    # cheap substring checks before any scanning (most error texts hold no SQL)
    return (
        "SELECT " in text
        or "INSERT INTO " in text
        or "UPDATE " in text
        or "DELETE FROM " in text
        or "WITH " in text
        or " INTO " in text
    )


# --- SQLSTATE and driver error numbers -------------------------------------------------------

SQL_STATE_KEYS: Final = (
    "sqlstate",
    "sql_state",
    "sqlState",
    "SQLState",
    "pg.code",
    "pg_code",
    "pgcode",
    "db.sqlstate",
    "db.sql_state",
    "error.sqlstate",
)
"""Keys whose value is a SQLSTATE (5 letters or digits)."""
DB_ERROR_CODE_KEYS: Final = ("db_error_code", "db.error_code", "mysql.errno", "mysql_errno", "mysql.number")
"""Keys whose value is a driver's error number (MySQL's ``MySQLError.Number``, 1–65535)."""

SQLSTATE_CLASSES: Final = frozenset(
    # PostgreSQL Appendix A (errcodes), the SQL standard's classes, and ODBC/MySQL's HY, XA, IM
    """00 01 02 03 07 08 09 0A 0B 0D 0E 0F 0K 0L 0M 0N 0P 0S 0T 0U 0V 0W 0X 0Y 0Z 10 20 21 22 23 24 25
    26 27 28 2B 2C 2D 2E 2F 2H 30 33 34 35 36 38 39 3B 3C 3D 3F 40 42 44 45 46 53 54 55 57 58 72 F0 HV
    HW HY HZ IM P0 XA XX""".split()
)
"""SQLSTATE classes (the first two characters): a generic ``code`` key or a bare ``(XXXXX)`` must name one."""

_SQLSTATE_LABEL: Final = "(SQLSTATE "
_PQ_CODE: Final = re.compile(r" \(([0-9A-Z]{5})\)(?=$|[\s:;,)])")
_MYSQL_ERROR: Final = re.compile(r"Error (\d{1,5})(?: \(([0-9A-Z]{5})\))?: ")
_MAX_PQ_SCAN: Final = 4096


def _is_state(code: str, need_class: bool) -> bool:
    return (
        len(code) == 5
        and code.isascii()
        and code.isalnum()
        and code.upper() == code
        and (not need_class or code[:2] in SQLSTATE_CLASSES)
    )


def sql_state_of(text: str) -> tuple[str, str]:
    """``(sql_state, db_error_code)`` from a database driver's error text; ``""`` for what it lacks.

    - pgx / pgconn ``PgError.Error()`` (github.com/jackc/pgx pgconn/errors.go):
      ``Severity + ": " + Message + " (SQLSTATE " + Code + ")"``, e.g.
      ``ERROR: duplicate key value violates unique constraint "users_email_key" (SQLSTATE 23505)``;
    - lib/pq ``Error.Error()`` since v1.11.0 (github.com/lib/pq error.go):
      ``"pq: " + msg + " (" + Code + ")"`` (up to v1.10.9 only ``"pq: " + Message``: no code
      in the text, then only a structured key gives it);
    - go-sql-driver/mysql ``MySQLError.Error()`` (errors.go): ``Error %d (%s): %s`` (number,
      SQLSTATE), or ``Error %d: %s`` without a SQLSTATE: the number is ``db_error_code``.
    """
    i = text.find(_SQLSTATE_LABEL)
    if i >= 0:
        code = text[i + len(_SQLSTATE_LABEL) : i + len(_SQLSTATE_LABEL) + 5]
        if text[i + len(_SQLSTATE_LABEL) + 5 : i + len(_SQLSTATE_LABEL) + 6] == ")" and _is_state(code, False):
            return code, ""
    if "Error " in text:
        m = _MYSQL_ERROR.search(text)
        if m is not None and (m.start() == 0 or not text[m.start() - 1].isalnum()):
            number = int(m.group(1))
            if 1 <= number <= 65535:
                return (m.group(2) or ""), str(number)
    i = text.find("pq: ")
    if i >= 0:
        m = _PQ_CODE.search(text, i, i + _MAX_PQ_SCAN)
        if m is not None and _is_state(m.group(1), True):
            return m.group(1), ""
    return "", ""


def sql_state_from(flat: Mapping[str, object], *texts: str) -> tuple[str, str]:
    """``(sql_state, db_error_code)`` of a record: its keys first (a generic ``code`` key only when it
    is a SQLSTATE of a known class with a digit), then its texts in order."""
    state = ""
    for key in SQL_STATE_KEYS if flat else ():
        value = flat.get(key)
        if isinstance(value, str) and _is_state(value.strip().upper(), False):
            state = value.strip().upper()
            break
    if not state and flat:
        value = flat.get("code")
        if isinstance(value, str) and _is_state(value, True) and any(c.isdigit() for c in value):
            state = value
    number = ""
    for key in DB_ERROR_CODE_KEYS if flat else ():
        value = flat.get(key)
        if isinstance(value, bool) or value is None:
            continue
        text = str(value).strip()
        if text.isdigit() and len(text) <= 5 and 1 <= int(text) <= 65535:
            number = str(int(text))
            break
    if state and number:
        return state, number
    for text in texts:
        if text and ("SQLSTATE" in text or "Error " in text or "pq: " in text):
            s, n = sql_state_of(text)
            if s or n:
                return state or s, number or n
    return state, number


# --- all of them ------------------------------------------------------------------------------

_KEYS: Final = frozenset((*GRPC_CODE_KEYS, *GENERIC_CODE_KEYS, *SQL_KEYS, *SQL_STATE_KEYS, *DB_ERROR_CODE_KEYS))
_NO_KEYS: Final[Mapping[str, object]] = {}


def _marked(text: str) -> bool:
    """Whether a text holds any marker the text readers look for (each of them checks again)."""
    return _RPC_ERROR in text or _maybe_sql(text) or "SQLSTATE" in text or "Error " in text or "pq: " in text


def has_dimension_keys(flat: Mapping[str, object]) -> bool:
    """Whether a record's keys hold any key :func:`dimensions` reads (else only its texts count)."""
    return bool(flat) and not flat.keys().isdisjoint(_KEYS)


def dimensions(flat: Mapping[str, object], *texts: str) -> dict[str, str]:
    """``grpc_code``, ``sql_digest``, ``sql_state`` and ``db_error_code`` of a record, the ones found.

    ``flat``: the record's keys (dotted for nested objects); ``texts``: its error text, then its
    message (earlier ones win). The hot path: most records have none of the keys (one
    ``isdisjoint``) and texts without the drivers' markers are passed over by substring checks.
    """
    keyed = flat if flat and not flat.keys().isdisjoint(_KEYS) else _NO_KEYS
    distinct = tuple(t for i, t in enumerate(texts) if t and t not in texts[:i] and _marked(t))
    if not distinct and keyed is _NO_KEYS:
        return {}
    grpc = grpc_code_from(keyed, *distinct)
    digest = sql_digest_from(keyed, *distinct)
    state, number = sql_state_from(keyed, *distinct)
    found = {"grpc_code": grpc, "sql_digest": digest, "sql_state": state, "db_error_code": number}
    return {k: v for k, v in found.items() if v}


# --- HTTP routes -----------------------------------------------------------------------------

ID: Final = ":id"
"""The one placeholder of a route (numbers, UUIDs, hashes, e-mails, tokens alike): the ``operation`` tag
has kept ``:id`` since v1, so its series go on; what kind of id it was is not worth a dimension."""
MAX_WORD_CHARS: Final = 32
"""A longer segment is an id whatever it holds (a route's words are shorter)."""
MAX_PATH_CHARS: Final = 4096

_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_URL_PREFIX: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]{0,15}://[^/]*")
_TOKEN_CHARS: Final = re.compile(r"[A-Za-z0-9_\-+=.~]+")
# a word of a route: lower case, camelCase, PascalCase, an acronym of up to 8 letters; joined by - _ .
_WORD: Final = re.compile(
    r"(?:[a-z]+(?:[A-Z][a-z]+)*|(?:[A-Z][a-z]+)+|[A-Z]{1,8})(?:[\-_.](?:[a-z]+|[A-Z][a-z]+|[A-Z]{1,8}))*"
)


def is_id_segment(segment: str) -> bool:
    """Whether one path segment is an id rather than a word of the route.

    Ids: digits only; a UUID; hex of 8+ characters with a digit, or 16+ without; anything
    with ``@`` (e-mails); 3+ digits, or any digit in 16+ characters; more than 32
    characters; 16+ characters of token characters (base64, base64url, JWT) that are not
    words (``lower``, ``camelCase``, ``PascalCase``, ``ACRONYM``, joined by ``-``, ``_``, ``.``).
    """
    n = len(segment)
    if n < 8 and segment.isalpha():  # the common case: a short word
        return False
    if n > MAX_WORD_CHARS or "@" in segment or segment.isdigit():
        return True
    digits = sum(map(str.isdigit, segment))
    if digits and digits == n:
        return True
    if digits >= 3 or (digits and n >= 16):
        return True
    if n >= 8 and _HEX.fullmatch(segment) and (digits or n >= 16):
        return True
    if n == 36 and _UUID.fullmatch(segment):
        return True
    if n >= 16 and _TOKEN_CHARS.fullmatch(segment):
        return segment.endswith("=") or _WORD.fullmatch(segment) is None
    return False


def route_of(path: str) -> str:
    """A URL path as a route of bounded cardinality: ``/users/123/orders/9f3c…`` → ``/users/:id/orders/:id``.

    Scheme and host, query and fragment are dropped; every id segment (:func:`is_id_segment`)
    becomes ``:id``; at most 8 segments are kept (a ``/…`` marks more) and the route is at
    most 128 characters (a cut one ends in ``…``). Templates (``{id}``, ``:id``, ``*``) pass
    through. ``""`` for an empty path.
    """
    p = path.strip()[:MAX_PATH_CHARS]
    if not p:
        return ""
    if "://" in p:
        m = _URL_PREFIX.match(p)
        if m is not None:
            p = p[m.end() :]
    for sep in ("?", "#"):
        k = p.find(sep)
        if k >= 0:
            p = p[:k]
    segments = [s for s in p.split("/", MAX_PATH_CHARS) if s]
    out = [ID if is_id_segment(s) else s for s in segments[:MAX_ROUTE_SEGMENTS]]
    if len(segments) > MAX_ROUTE_SEGMENTS:
        out.append(CUT)
    route = "/" + "/".join(out)
    return route if len(route) <= MAX_ROUTE_CHARS else route[: MAX_ROUTE_CHARS - 1] + CUT


def bounded_route(route: str) -> str:
    """A ``route`` key's value as given (the framework's template), only stripped and cut to 128 characters."""
    r = route.strip()
    return r if len(r) <= MAX_ROUTE_CHARS else r[: MAX_ROUTE_CHARS - 1] + CUT


def operation_of(method: str, route: str) -> str:
    """``METHOD /route`` (either may be empty); methods outside the HTTP ones are ``OTHER``."""
    m = method.strip().upper()
    if m and m not in HTTP_METHODS:
        m = "OTHER"
    return f"{m} {route}".strip()
