// Renders the panels of a pattern response. Panel definitions come from patternRegistry.json
// (the refactoring plan moves them into the backend pattern JSON later).
import React from "react";
import registry from "./patternRegistry.json";
import HoldingsTable from "./components/HoldingsTable";
import { formatNumber, formatValue } from "./api/formatters";

export function resolvePath(data, path) {
  return path.split(".").reduce((cur, key) => (cur == null ? undefined : cur[key]), data);
}

function MetricPanel({ panel, value }) {
  return (
    <div className="panel metric">
      <h4>{panel.title}</h4>
      <span className="metric-value">{formatValue(value, panel.format)}</span>
    </div>
  );
}

function ChartPanel({ panel, rows }) {
  const max = Math.max(...rows.map((r) => Number(r[panel.yField]) || 0), 1);
  return (
    <div className="panel chart">
      <h4>{panel.title}</h4>
      <svg viewBox={`0 0 ${rows.length * 10} 100`} preserveAspectRatio="none">
        {rows.map((r, i) => (
          <rect key={i} x={i * 10} width={8} y={100 - (Number(r[panel.yField]) / max) * 100}
                height={(Number(r[panel.yField]) / max) * 100} />
        ))}
      </svg>
    </div>
  );
}

export default function PatternPanel({ patternId, response }) {
  const panels = registry[patternId]?.panels ?? [];
  return (
    <div className="pattern-panels">
      {panels.map((panel) => {
        const value = resolvePath(response.data, panel.dataPath);
        if (value == null || (Array.isArray(value) && value.length === 0)) {
          return <div key={panel.id} className="panel empty">{panel.title}: no data</div>;
        }
        if (panel.type === "metric") return <MetricPanel key={panel.id} panel={panel} value={value} />;
        if (panel.type === "chart") return <ChartPanel key={panel.id} panel={panel} rows={value} />;
        if (panel.dataPath === "valued_positions.positions") {
          // holdings get the richer table (closed share, open vs original quantity)
          return <HoldingsTable key={panel.id} positions={value} />;
        }
        return (
          <table key={panel.id} className="panel data-table">
            <caption>{panel.title}</caption>
            <thead><tr>{panel.columns.map((c) => <th key={c.field}>{c.header}</th>)}</tr></thead>
            <tbody>
              {value.map((row, i) => (
                <tr key={i}>
                  {panel.columns.map((c) => (
                    <td key={c.field}>
                      {c.field === "qty_open" || c.field === "qty_original"
                        ? formatNumber(row[c.field], 2)
                        : formatValue(row[c.field])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        );
      })}
    </div>
  );
}
