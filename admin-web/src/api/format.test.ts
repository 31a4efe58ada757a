import { describe, expect, it } from 'vitest';
import { dayEnd, dayStart, formatCost, formatCount, isoDay } from './format';

describe('format', () => {
  it('writes counts and costs', () => {
    expect(formatCount(1234567n)).toBe('1,234,567');
    expect(formatCost(1_500_000n)).toBe('1.5000');
    expect(formatCost(42)).toBe('0.0000');
    expect(formatCost(123456)).toBe('0.1235');
  });

  it('reads date inputs as UTC days', () => {
    expect(dayStart('2026-03-04')?.toISOString()).toBe('2026-03-04T00:00:00.000Z');
    expect(dayEnd('2026-03-04')?.toISOString()).toBe('2026-03-05T00:00:00.000Z');
    expect(dayStart('')).toBeUndefined();
    expect(dayStart('2026-13-45')).toBeUndefined();
    expect(isoDay(new Date('2026-03-04T23:00:00Z'))).toBe('2026-03-04');
  });
});
