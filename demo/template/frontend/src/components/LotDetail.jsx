import React from "react";
import { formatNumber } from "../api/formatters";

// Lots of one holding (holding_deep_dive -> position.lots).
export default function LotDetail({ lots }) {
  return (
    <ul className="lots">
      {lots.map((lot) => (
        <li key={lot.lot_id} className={lot.qty_open === 0 ? "closed" : "open"}>
          {lot.acquisition_date}: {formatNumber(lot.qty_open, 2)} of {formatNumber(lot.qty_original, 2)} open
          {lot.closed_date ? ` (closed ${lot.closed_date})` : ""}
        </li>
      ))}
    </ul>
  );
}
