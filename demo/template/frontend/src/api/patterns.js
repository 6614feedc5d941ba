// Client for the pattern endpoint.
export async function executePattern(patternId, inputs, rights = ["patterns:execute"]) {
  const resp = await fetch(`/api/patterns/${patternId}/execute`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-DawsOS-Rights": rights.join(",") },
    body: JSON.stringify({ inputs }),
  });
  if (!resp.ok) throw new Error(`${patternId}: HTTP ${resp.status}`);
  return resp.json();
}
