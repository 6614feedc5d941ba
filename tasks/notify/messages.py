"""Slack messages: a failure (gate result, error, what was rolled back, run link) as a fallback
text plus Block Kit blocks that respect Block Kit's size limits."""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from runbook.gate_result import GateResult
from runbook.settings import Settings, get_settings
from runbook.tasks.notify.redact import ELLIPSIS, expand_secrets, redact

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks)
HEADER_MAX = 150



SECTION_TEXT_MAX = 3000



FIELD_TEXT_MAX = 2000



CONTEXT_TEXT_MAX = 3000



BUTTON_TEXT_MAX = 75



BUTTON_URL_MAX = 3000



MAX_BLOCKS = 50



FALLBACK_TEXT_MAX = 3000



SAMPLE_ROWS_MAX = 5



SAMPLE_COLS_MAX = 8



SAMPLE_CELL_MAX = 40          # a UUID key (36) must survive whole



ROLLED_BACK_MAX = 20






def truncate(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS



def _esc(text: Any) -> str:
    """Escape the three characters Slack mrkdwn treats as control characters."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")



def _code(text: Any, limit: int) -> str:
    """A mrkdwn code block of at most `limit` characters."""
    body = _esc(text).replace("```", "ʼʼʼ")
    return "```" + truncate(body, limit - 6) + "```"



def _fmt_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)



def _cell(value: Any) -> str:
    text = "∅" if value is None else str(value)
    text = " ".join(text.split())            # no newlines/tabs inside a table cell
    return truncate(text, SAMPLE_CELL_MAX)



def sample_table(rows: list[dict], *, max_rows: int = SAMPLE_ROWS_MAX,
                 max_cols: int = SAMPLE_COLS_MAX) -> str:
    """Rows as a fixed-width text table (header, rule, rows), cells truncated."""
    rows = [r if isinstance(r, dict) else {"value": r} for r in rows[:max_rows]]
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    extra = len(cols) - max_cols
    cols = cols[:max_cols]
    grid = [[_cell(c) for c in cols]] + [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(cols))]
    lines = [" | ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in grid]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    if extra > 0:
        lines.append(f"(+{extra} more column{'s' if extra > 1 else ''})")
    return "\n".join(lines)



def flow_run_url(flow_run_id: str | None, settings: Settings | None = None) -> str | None:
    """Link to a flow run in the Prefect UI (PREFECT_UI_URL + /runs/flow-run/<id>)."""
    if not flow_run_id:
        return None
    try:
        settings = settings or get_settings()
    except Exception:  # noqa: BLE001
        return None
    if not settings.prefect_ui_url:
        return None
    return f"{settings.prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"



def alert_rows(gate: GateResult, full_rows: bool = False) -> list:
    """The sample rows an alert may carry. Rows read from a table (the gate names its `table`)
    are customer data: only their key, the problem and the columns that disagree leave, unless
    SLACK_SAMPLE_FULL_ROWS=true. Other samples (files, routes, patterns) are the gate's own."""
    details = gate.details or {}
    if full_rows or not details.get("table"):
        return list(gate.sample)
    key = details.get("key") or "id"
    pairs = [tuple(p) for p in details.get("pairs") or [] if len(p) == 2]
    out = []
    for row in gate.sample:
        if not isinstance(row, dict):
            out.append({"row": "(withheld)"})
            continue
        kept = {k: row[k] for k in (key, "problem", "table") if k in row}
        for old, new in pairs:
            if old in row and new in row and row[old] != row[new]:
                kept[old], kept[new] = row[old], row[new]
        out.append(kept or {"row": "(withheld)"})
    return out


def build_alert(*, title: str, flow_name: str, environment: str, gate: GateResult | None,
                error: str | None, rolled_back: list[str], run_url: str | None,
                secrets: Iterable[str] = (), now: datetime | None = None,
                full_rows: bool = False) -> tuple[str, list[dict]]:
    """Build (fallback text, Block Kit blocks) for a failure alert.

    `secrets` are redacted from every input before anything is truncated (URL credentials and
    Slack tokens are always redacted); `post_alert` redacts the configured secrets again.
    """
    secrets = expand_secrets(secrets)

    def r(value: Any) -> str:
        return redact(_fmt_value(value), secrets)

    now = now or datetime.now(UTC)
    title = r(title) or "Runbook failure"
    flow_name = r(flow_name) or "unknown flow"
    environment = r(environment) or "unknown"
    error = r(error) if error else None
    rolled = [r(x) for x in (rolled_back or [])]
    run_url = r(run_url) if run_url else None

    blocks: list[dict] = [
        {"type": "header",
         "text": {"type": "plain_text", "text": truncate(f"🚨 {title}", HEADER_MAX), "emoji": True}},
    ]

    # what failed
    lines = [f"*Flow:* `{_esc(truncate(flow_name, 200))}`  ·  *Environment:* `{_esc(environment)}`"]
    if gate is not None:
        status = "passed" if gate.passed else "failed"
        lines.append(f"*Gate {status}:* `{_esc(truncate(r(gate.name), 200))}`")
        lines.append(f"*Expectation:* {_esc(truncate(r(gate.expectation), 1500))}")
    blocks.append({"type": "section",
                   "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), SECTION_TEXT_MAX)}})

    if gate is not None:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": "*Observed*\n" + _code(r(gate.observed), FIELD_TEXT_MAX - 20)},
            {"type": "mrkdwn", "text": "*Expected*\n" + _code(r(gate.expected), FIELD_TEXT_MAX - 20)},
        ]})
        sample = alert_rows(gate, full_rows)
        if sample:
            shown = min(len(sample), SAMPLE_ROWS_MAX)
            head = f"*Sample rows* ({shown} of {len(sample)})\n"
            rows = [{redact(str(k), secrets): None if v is None else redact(str(v), secrets)
                     for k, v in row.items()} if isinstance(row, dict) else r(row)
                    for row in sample[:SAMPLE_ROWS_MAX]]
            table = r(sample_table(rows))
            blocks.append({"type": "section", "text": {
                "type": "mrkdwn", "text": head + _code(table, SECTION_TEXT_MAX - len(head))}})

    if error:
        head = "*Error*\n"
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": head + _code(error, SECTION_TEXT_MAX - len(head))}})

    if rolled:
        items = [f"• {_esc(truncate(x, 200))}" for x in rolled[:ROLLED_BACK_MAX]]
        if len(rolled) > ROLLED_BACK_MAX:
            items.append(f"… and {len(rolled) - ROLLED_BACK_MAX} more")
        text = "*Rolled back*\n" + "\n".join(items)
    else:
        text = "*Rolled back:* nothing"
    blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                               "text": truncate(text, SECTION_TEXT_MAX)}})

    if run_url and run_url.startswith(("http://", "https://")) and len(run_url) <= BUTTON_URL_MAX:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "action_id": "open_run", "url": run_url, "style": "danger",
            "text": {"type": "plain_text", "text": "Open run in Prefect"[:BUTTON_TEXT_MAX]},
        }]})

    ts = int(now.timestamp())
    iso = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    context = f"env *{_esc(environment)}*  ·  <!date^{ts}^{{date_short_pretty}} {{time_secs}}|{iso}>"
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": truncate(context, CONTEXT_TEXT_MAX)}]})

    # fallback text: notifications, screen readers, clients without Block Kit
    parts = [f"{title} — {flow_name} ({environment})"]
    if gate is not None:
        parts.append(f"gate {r(gate.name)} {'passed' if gate.passed else 'failed'}: "
                     f"{r(gate.expectation)} (observed {r(gate.observed)}, "
                     f"expected {r(gate.expected)})")
    if error:
        parts.append(f"error: {truncate(error, 500)}")
    parts.append("rolled back: " + (", ".join(rolled) if rolled else "nothing"))
    if run_url:
        parts.append(f"run: {run_url}")
    text = truncate("\n".join(parts), FALLBACK_TEXT_MAX)
    return text, enforce_limits(blocks)



def enforce_limits(blocks: list[dict]) -> list[dict]:
    """Clamp text lengths to Block Kit's limits (again after redaction) and the block count."""
    blocks = blocks[:MAX_BLOCKS]
    for b in blocks:
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        t = b.get("text")
        if isinstance(t, dict) and isinstance(t.get("text"), str):
            t["text"] = truncate(t["text"], HEADER_MAX if kind == "header" else SECTION_TEXT_MAX)
        for f in b.get("fields") or []:
            if isinstance(f, dict) and isinstance(f.get("text"), str):
                f["text"] = truncate(f["text"], FIELD_TEXT_MAX)
        if kind == "context":
            for e in b.get("elements") or []:
                if isinstance(e, dict) and isinstance(e.get("text"), str):
                    e["text"] = truncate(e["text"], CONTEXT_TEXT_MAX)
    return blocks
