"""Pattern load for the async gate, in its own process (so that its clients never hold the GIL of
the process that times /health). Reads one JSON object from stdin:
{"base_url", "seconds", "clients": [[{"path", "json", "headers"}, ...], ...]}; each client runs its
requests in turn, over and over, until `seconds` have passed; prints "ready" when started and,
at the end, a JSON line {"status": {code: count}}."""
from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter

import httpx


def _client(base_url: str, requests: list[dict], until: float, seen: Counter, lock: threading.Lock) -> None:
    with httpx.Client(timeout=60) as client:
        i = 0
        while time.monotonic() < until:
            req = requests[i % len(requests)]
            try:
                status = client.post(base_url + req["path"], json=req["json"], headers=req["headers"]).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            with lock:
                seen[str(status)] += 1
            i += 1


def main() -> None:
    spec = json.loads(sys.stdin.read())
    until, seen, lock = time.monotonic() + spec["seconds"], Counter(), threading.Lock()
    threads = [threading.Thread(target=_client, args=(spec["base_url"], reqs, until, seen, lock))
               for reqs in spec["clients"]]
    for t in threads:
        t.start()
    print("ready", flush=True)
    for t in threads:
        t.join()
    print(json.dumps({"status": dict(seen)}), flush=True)


if __name__ == "__main__":
    main()
