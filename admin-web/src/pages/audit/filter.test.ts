import { describe, expect, it } from 'vitest';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { AuditOutcome } from '../../gen/codexcontinue/v1/audit_pb.js';
import { EMPTY_FILTER, toFilter } from './filter';

describe('toFilter', () => {
  it('leaves everything open when the form is empty', () => {
    const filter = toFilter(EMPTY_FILTER);
    expect(filter.action).toBe('');
    expect(filter.actor).toBeUndefined();
    expect(filter.timeRange).toBeUndefined();
    expect(filter.outcome).toBe(AuditOutcome.UNSPECIFIED);
  });

  it('reads actors, outcome and a day range (end exclusive)', () => {
    const filter = toFilter({
      ...EMPTY_FILTER, action: ' login ', outcome: String(AuditOutcome.DENIED), actor: 'key:abc',
      from: '2026-03-01', to: '2026-03-02', phiOnly: true,
    });
    expect(filter.action).toBe('login');
    expect(filter.outcome).toBe(AuditOutcome.DENIED);
    expect(filter.actor?.kind).toEqual({ case: 'apiKeyId', value: 'abc' });
    expect(timestampDate(filter.timeRange!.start!).toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(timestampDate(filter.timeRange!.end!).toISOString()).toBe('2026-03-03T00:00:00.000Z');
    expect(filter.phiOnly).toBe(true);
    expect(toFilter({ ...EMPTY_FILTER, actor: 'system:retention-purge' }).actor?.kind).toEqual({ case: 'system', value: 'retention-purge' });
    expect(toFilter({ ...EMPTY_FILTER, actor: 'u-1' }).actor?.kind).toEqual({ case: 'userId', value: 'u-1' });
  });
});
