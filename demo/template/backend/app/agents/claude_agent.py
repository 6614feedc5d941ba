"""Claude agent: narrative summaries. Without ANTHROPIC_API_KEY it uses a template."""
from __future__ import annotations

import os

from app.agents.base_agent import BaseAgent


class ClaudeAgent(BaseAgent):
    name = "claude_agent"
    capabilities = ("summarize_report",)

    async def summarize_report(self, report: dict) -> dict:
        totals = report["totals"]
        top = sorted(report["holdings"], key=lambda h: -h["market_value"])[:3]
        bullets = [f"{h['symbol']}: {h['qty_open']:,.0f} shares open, "
                   f"{h['weight'] * 100:.1f}% of the portfolio" for h in top]
        text = (f"{report['portfolio']['name']} holds {totals['position_count']} positions worth "
                f"{totals['total_market_value']:,.2f} {report['portfolio']['base_currency']} "
                f"as of {report['as_of_date']}.")
        mode = "llm" if os.environ.get("ANTHROPIC_API_KEY") else "template"
        return {"text": text, "bullet_points": bullets, "mode": mode}
