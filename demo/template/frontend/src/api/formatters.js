// Display helpers shared by the panels.
export const QUANTITY_FIELDS = ["qty_open", "qty_original", "total_qty_open", "new_qty_open", "target_qty", "trade_qty"];

export function formatNumber(value, digits = 0) {
  if (value == null || Number.isNaN(Number(value))) return "–";
  return Number(value).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatCurrency(value, currency = "USD") {
  if (value == null) return "–";
  return Number(value).toLocaleString(undefined, { style: "currency", currency });
}

export function formatValue(value, format) {
  if (format === "currency") return formatCurrency(value);
  if (format === "percent") return `${(Number(value) * 100).toFixed(2)}%`;
  if (typeof value === "number") return formatNumber(value, 2);
  return value == null ? "–" : String(value);
}

export function formatField(field, value) {
  return QUANTITY_FIELDS.includes(field) ? formatNumber(value, 2) : formatValue(value);
}
