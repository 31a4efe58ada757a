// Usage report rows summed for the charts (by day, model or user) and written as CSV.
import type { UsageRow } from '../gen/codexcontinue/v1/admin_pb.js';

/** Totals of one group. */
export interface UsageSum {
  key: string;
  tokens: number;
  promptTokens: number;
  completionTokens: number;
  costMicros: number;
  requests: number;
}

export type Dimension = 'day' | 'model' | 'user';

/** Sums `rows` by `dimension`; days in calendar order, the others by tokens, largest first. */
export function sumBy(rows: readonly UsageRow[], dimension: Dimension, label: (key: string) => string = (k) => k): UsageSum[] {
  const sums = new Map<string, UsageSum>();
  for (const row of rows) {
    const raw = dimension === 'day' ? row.day : dimension === 'model' ? row.model : row.userId;
    const key = label(raw || '—');
    const sum = sums.get(key) ?? { key, tokens: 0, promptTokens: 0, completionTokens: 0, costMicros: 0, requests: 0 };
    sum.tokens += Number(row.usage?.totalTokens ?? 0n);
    sum.promptTokens += Number(row.usage?.promptTokens ?? 0n);
    sum.completionTokens += Number(row.usage?.completionTokens ?? 0n);
    sum.costMicros += Number(row.usage?.costMicros ?? 0n);
    sum.requests += Number(row.requests);
    sums.set(key, sum);
  }
  const list = [...sums.values()];
  return dimension === 'day'
    ? list.sort((a, b) => a.key.localeCompare(b.key))
    : list.sort((a, b) => b.tokens - a.tokens || a.key.localeCompare(b.key));
}

/** Every day from `from` to `to` (inclusive, "YYYY-MM-DD"), with zero where nothing ran. */
export function fillDays(sums: readonly UsageSum[], from: string, to: string): UsageSum[] {
  const byDay = new Map(sums.map((s) => [s.key, s]));
  const out: UsageSum[] = [];
  const end = Date.parse(`${to}T00:00:00Z`);
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= end && out.length < 400; t += 86_400_000) {
    const key = new Date(t).toISOString().slice(0, 10);
    out.push(byDay.get(key) ?? { key, tokens: 0, promptTokens: 0, completionTokens: 0, costMicros: 0, requests: 0 });
  }
  return out;
}

function csvField(value: string): string {
  // Quote per RFC 4180; a leading formula character is neutralised for spreadsheets.
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The report as CSV, header first, one line per row. */
export function usageCsv(rows: readonly UsageRow[], userLabel: (id: string) => string = (id) => id): string {
  const header = ['day', 'user_id', 'user', 'model', 'requests', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'cost_micros', 'mean_latency_ms'];
  const lines = rows.map((row) => [
    row.day, row.userId, userLabel(row.userId), row.model, String(row.requests),
    String(row.usage?.promptTokens ?? 0n), String(row.usage?.completionTokens ?? 0n),
    String(row.usage?.totalTokens ?? 0n), String(row.usage?.costMicros ?? 0n), String(row.meanLatencyMs),
  ].map(csvField).join(','));
  return [header.join(','), ...lines].join('\r\n') + '\r\n';
}
