"""A load-generator process: ``python -m bench.loadgen SCENARIO '<json params>'``; prints a JSON result."""

from __future__ import annotations

import asyncio
import json
import sys

from bench import audience, gamerelay, scenarios
from bench.servers import raise_fd_limit


def main() -> None:
    raise_fd_limit()
    name, params = sys.argv[1], json.loads(sys.argv[2])
    runner = {
        "http": scenarios.http_load,
        "ws-connect": scenarios.ws_connect,
        "fanout": scenarios.fanout,
        "idle": scenarios.idle_sockets,
        "game-relay": gamerelay.game_relay,
        "audience": audience.audience,
    }[name]
    result = asyncio.run(runner(**params))
    if result is not None:
        print(json.dumps({"stage": "result", **result}), flush=True)


if __name__ == "__main__":
    main()
