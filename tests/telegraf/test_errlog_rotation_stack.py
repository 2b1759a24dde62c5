"""Never lost through the real Telegraf into the real InfluxDB: 20,000 lines, 100 rotations of each kind.

The stack's Telegraf runs errlog (inputs.execd) on ``applog_dir/*.log``; the writer uses its own
service name, so only its events are counted. A rotated ``<service>.log.N`` does not match
``*.log``: errlog finds it beside the file it follows. InfluxDB keeps one point per series and
time, so a line sent twice with the same time would not show; each line here has its own
time, so a repeat with another time would show as two rows with the same sequence number.
The ``telegraf-restart`` variants stop Telegraf (SIGTERM to its process group: Telegraf and
errlog) halfway and start it again on the same offsets file while the writer goes on.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest
from test_errlog_rotation import PER_FILE, TOTAL, Writer

from errloop.deploy.stack import run
from errloop.deploy.stack.run import StackConfig
from errloop.rules import contract

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(300)]
SEQ = re.compile(r"^request (\d+) failed$")


def messages(cfg: StackConfig, service: str) -> list[str]:
    q = f"SELECT message FROM {contract.EVENTS} WHERE service = '{service}'"
    body = httpx.get(f"{cfg.influx_url}/query", params={"db": contract.DATABASE, "q": q}, timeout=30).json()
    out: list[str] = []
    for result in body.get("results", []):
        for series in result.get("series", []):
            out += [values[1] for values in series["values"]]
    return out


@pytest.mark.parametrize("restart", [False, True], ids=["", "telegraf-restart"])
@pytest.mark.parametrize("kind", ["rename", "copytruncate"])
def test_100_rotations_through_telegraf_lose_and_repeat_nothing(
    tick_stack: StackConfig, kind: str, restart: bool
) -> None:
    service = f"rot-{kind}-{uuid.uuid4().hex[:6]}"
    log = tick_stack.applog_dir / f"{service}.log"
    writer = Writer(log, kind)
    log.touch()
    time.sleep(1.5)  # errlog finds new files every second: it follows this one before the writer starts
    wt = threading.Thread(target=writer.run, daemon=True)
    wt.start()
    if restart:  # stop Telegraf (SIGTERM to it and errlog) halfway and start it again
        while writer.written < TOTAL // 2 and wt.is_alive():
            time.sleep(0.01)
        run.stop(tick_stack, "telegraf")
        run.up(tick_stack, say=lambda line: None)
    wt.join(timeout=60)
    assert writer.error is None, writer.error
    assert writer.written == TOTAL and writer.rotations == TOTAL // PER_FILE - 1
    deadline = time.monotonic() + 60
    got: list[str] = []
    while time.monotonic() < deadline:
        got = messages(tick_stack, service)
        if len(got) >= TOTAL:
            break
        time.sleep(0.5)
    time.sleep(2)
    got = messages(tick_stack, service)
    seqs = Counter(int(m.group(1)) for text in got if (m := SEQ.match(text)))
    lost = sorted(set(range(TOTAL)) - set(seqs))
    duplicated = sorted(s for s, n in seqs.items() if n > 1)
    print(
        f"through Telegraf{' restarted' if restart else ''}, {kind}: {TOTAL} lines, {writer.rotations} rotations: lost {len(lost)}, dup {len(duplicated)}"
    )
    assert not lost and not duplicated, f"lost {len(lost)} (first {lost[:20]}), duplicated {len(duplicated)}"
