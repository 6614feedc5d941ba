import React from "react";
import { formatCurrency, formatNumber } from "../api/formatters";

// One row per position of valued_positions.positions.
export default function HoldingsTable({ positions }) {
  const totalOpen = positions.reduce((sum, p) => sum + p.qty_open, 0);
  return (
    <table className="holdings">
      <thead>
        <tr><th>Symbol</th><th>Open Qty</th><th>Original Qty</th><th>Closed</th><th>Value</th></tr>
      </thead>
      <tbody>
        {positions.map((p) => {
          const closedShare = p.qty_original ? 1 - p.qty_open / p.qty_original : 0;
          return (
            <tr key={p.security_id}>
              <td>{p.symbol}</td>
              <td>{formatNumber(p.qty_open, 2)}</td>
              <td>{formatNumber(p.qty_original, 2)}</td>
              <td>{(closedShare * 100).toFixed(1)}%</td>
              <td>{formatCurrency(p.market_value)}</td>
            </tr>
          );
        })}
      </tbody>
      <tfoot><tr><td>Total</td><td>{formatNumber(totalOpen, 2)}</td><td colSpan={3} /></tr></tfoot>
    </table>
  );
}
