"""One token for every engine of the machine: processes that need a KIS token at the same
moment share one request through the token cache's file lock."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
import time
from pathlib import Path

from orderlane_kis.fake import FakeKisVenue

# Each process waits for a common moment, then asks for the token from three coroutines at
# once, as an engine's place, poll and notice stream would at start.
_PROCESS = """
import asyncio, json, sys, time
from orderlane import BrokerContext, SystemClock
from orderlane_kis.config import load_settings
from orderlane_kis.http import KisHttp

async def main():
    settings = load_settings("paper", json.loads(sys.argv[1]), environ={})
    http = KisHttp(settings)
    ctx = BrokerContext("engine", {}, SystemClock())
    await asyncio.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all at one moment
    tokens = await asyncio.gather(*(http.tokens.token(ctx) for _ in range(3)))
    await http.aclose()
    print(json.dumps({"tokens": sorted(set(tokens)), "issued": http.tokens.issued}))

asyncio.run(main())
"""


async def test_engines_in_several_processes_share_one_token_request(tmp_path: Path) -> None:
    cache = tmp_path / "tokens"
    async with FakeKisVenue("paper", ping_interval=None) as venue:
        options = venue.adapter_options(cache)
        moment = str(time.time() + 8)  # after every process has started
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _PROCESS,
                json.dumps(options),
                moment,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(4)
        ]
        outputs = [await asyncio.wait_for(p.communicate(), 60) for p in processes]
        requests = venue.request_count("token")
    answers = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
        answers.append(json.loads(out))
    assert requests == 1
    assert sum(a["issued"] for a in answers) == 1
    assert len({token for a in answers for token in a["tokens"]}) == 1
    [token_file] = cache.glob("*.json")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
