import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { UsageRowSchema } from '../gen/codexcontinue/v1/admin_pb.js';
import { fillDays, sumBy, usageCsv } from './aggregate';

const row = (day: string, userId: string, model: string, tokens: number, cost: number) => create(UsageRowSchema, {
  day, userId, model, requests: 1n,
  usage: { promptTokens: BigInt(tokens - 1), completionTokens: 1n, totalTokens: BigInt(tokens), costMicros: BigInt(cost) },
});

const rows = [
  row('2026-03-02', 'u1', 'a/x', 10, 100),
  row('2026-03-01', 'u2', 'a/x', 5, 50),
  row('2026-03-02', 'u2', 'b/y', 30, 300),
];

describe('sumBy', () => {
  it('sums by day in calendar order', () => {
    expect(sumBy(rows, 'day').map((s) => [s.key, s.tokens, s.costMicros, s.requests]))
      .toEqual([['2026-03-01', 5, 50, 1], ['2026-03-02', 40, 400, 2]]);
  });

  it('sums by model and by user, largest first, with labels', () => {
    expect(sumBy(rows, 'model').map((s) => [s.key, s.tokens])).toEqual([['b/y', 30], ['a/x', 15]]);
    expect(sumBy(rows, 'user', (id) => `${id}@x`).map((s) => s.key)).toEqual(['u2@x', 'u1@x']);
  });

  it('fills the days nothing ran', () => {
    expect(fillDays(sumBy(rows, 'day'), '2026-02-28', '2026-03-02').map((s) => [s.key, s.tokens]))
      .toEqual([['2026-02-28', 0], ['2026-03-01', 5], ['2026-03-02', 40]]);
  });
});

describe('usageCsv', () => {
  it('writes a header and quotes what needs it', () => {
    const csv = usageCsv([row('2026-03-01', 'u1', 'lab/"q",1', 3, 7)], () => '=cmd()');
    expect(csv.split('\r\n')).toEqual([
      'day,user_id,user,model,requests,prompt_tokens,completion_tokens,total_tokens,cost_micros,mean_latency_ms',
      `2026-03-01,u1,'=cmd(),"lab/""q"",1",1,2,1,3,7,0`,
      '',
    ]);
  });
});
