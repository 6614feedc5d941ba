"""Flow runs in the Prefect API: read page by page; killed runs marked Crashed."""
from __future__ import annotations

import logging

log = logging.getLogger("runbook.history")
PAGE = 200


def read_all(read, **kw) -> list:
    out, offset = [], 0
    while True:
        page = read(limit=PAGE, offset=offset, **kw)
        out += page
        if len(page) < PAGE:
            return out
        offset += PAGE


def mark_crashed(flow_run_ids: list[str], by: str) -> list[str]:
    """Runs the ledger knows were killed but Prefect still shows running: set them Crashed so
    the UI and the standup tell the truth. Returns the ids changed; never raises."""
    import uuid

    from prefect import get_client
    from prefect.states import Crashed

    changed = []
    try:
        with get_client(sync_client=True) as client:
            for rid in flow_run_ids:
                try:
                    run = client.read_flow_run(uuid.UUID(rid))
                except Exception:  # noqa: BLE001 - not a Prefect run id, or gone
                    continue
                if run.state and not run.state.is_final():
                    client.set_flow_run_state(run.id, Crashed(
                        message=f"the run's process was killed; its work was taken over by run {by}"), force=True)
                    changed.append(rid)
    except Exception:  # noqa: BLE001 - a view of the truth; the ledger is the record
        log.warning("could not mark killed runs Crashed in Prefect", exc_info=True)
    return changed
