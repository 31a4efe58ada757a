// How the console writes times, numbers and costs.
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';

/** "2026-03-04 14:05:09" in the browser's time zone; "—" when unset. */
export function formatTime(ts: Timestamp | undefined): string {
  if (!ts) return '—';
  const d = timestampDate(ts);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** 1234567 → "1,234,567". */
export function formatCount(value: bigint | number): string {
  return new Intl.NumberFormat('en-US').format(value);
}

/** Millionths of the currency unit → "12.3456" (four decimals, the price table's grain). */
export function formatCost(micros: bigint | number): string {
  const value = Number(micros) / 1_000_000;
  return value.toFixed(4);
}

/** The date of an `<input type="date">` value as a UTC day start, or undefined. */
export function dayStart(value: string): Date | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return undefined;
  const date = new Date(`${value}T00:00:00Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** The day after an `<input type="date">` value (an exclusive end), or undefined. */
export function dayEnd(value: string): Date | undefined {
  const start = dayStart(value);
  return start && new Date(start.getTime() + 86_400_000);
}

/** "YYYY-MM-DD" of a date in UTC. */
export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}
