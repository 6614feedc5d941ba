"""Risk: factor exposures from position_factor_betas (per portfolio and security), parametric
VaR, concentration."""
from __future__ import annotations

import math

from app.services.common import num, to_uuid

Z_SCORES = {0.90: 1.2816, 0.95: 1.6449, 0.99: 2.3263}


async def factor_betas(pool, security_ids, portfolio_id=None) -> dict:
    """{security_id: {factor_name: beta}}: the portfolio's betas, or the average over the
    portfolios holding the security when no portfolio is given."""
    rows = await pool.fetch(
        """
        SELECT security_id, factor_name, avg(beta) AS beta
          FROM position_factor_betas
         WHERE security_id = ANY($1::uuid[])
           AND ($2::uuid IS NULL OR portfolio_id = $2::uuid)
         GROUP BY security_id, factor_name
        """,
        [to_uuid(s) for s in security_ids], to_uuid(portfolio_id) if portfolio_id else None,
    )
    betas: dict = {}
    for r in rows:
        betas.setdefault(r["security_id"], {})[r["factor_name"]] = num(r["beta"])
    return betas


async def factor_exposures(pool, positions: list[dict], portfolio_id=None) -> list[dict]:
    """Market-value weighted beta per factor."""
    total = sum(p["market_value"] for p in positions) or 1.0
    betas = await factor_betas(pool, [p["security_id"] for p in positions], portfolio_id)
    exposures: dict[str, float] = {}
    for p in positions:
        for factor, beta in betas.get(to_uuid(p["security_id"]), {}).items():
            exposures[factor] = exposures.get(factor, 0.0) + beta * p["market_value"] / total
    return [{"factor": f, "beta": num(b), "exposure": num(b * total, 2)}
            for f, b in sorted(exposures.items())]


def value_at_risk(total_market_value: float, annual_volatility: float,
                  confidence: float = 0.95, horizon_days: int = 1) -> float:
    z = Z_SCORES.get(round(float(confidence), 2), 1.6449)
    daily_vol = annual_volatility / math.sqrt(252)
    return num(total_market_value * daily_vol * z * math.sqrt(horizon_days), 2)


def concentration(positions: list[dict], top: int = 5) -> dict:
    weights = sorted((p.get("weight", 0.0) for p in positions), reverse=True)
    return {"top_weight": num(sum(weights[:top])),
            "hhi": num(sum(w * w for w in weights))}
