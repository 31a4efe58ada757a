import { Code, ConnectError } from '@connectrpc/connect';
import { describe as suite, expect, it } from 'vitest';
import { codeName, concerns, describe, problemOf } from './errors';

suite('problemOf', () => {
  it('splits the field an INVALID_ARGUMENT names from its description', () => {
    const problem = problemOf(new ConnectError('budget.token_limit: must not be negative', Code.InvalidArgument));
    expect(problem).toEqual({ code: Code.InvalidArgument, field: 'budget.token_limit', message: 'must not be negative' });
    expect(concerns(problem, 'token_limit')).toBe(true);
    expect(concerns(problem, 'budget')).toBe(true);
    expect(concerns(problem, 'user_id')).toBe(false);
  });

  it('reads indexed paths', () => {
    const problem = problemOf(new ConnectError('route.targets[1].provider: unknown provider "x"', Code.InvalidArgument));
    expect(problem.field).toBe('route.targets[1].provider');
  });

  it('keeps other codes whole, even when the text has a colon', () => {
    const problem = problemOf(new ConnectError('role: owner required', Code.PermissionDenied));
    expect(problem).toEqual({ code: Code.PermissionDenied, message: 'role: owner required' });
  });

  it('does not mistake a sentence for a field', () => {
    const problem = problemOf(new ConnectError('Tenant not found: acme', Code.InvalidArgument));
    expect(problem.field).toBeUndefined();
  });

  it('wraps non-Connect errors', () => {
    expect(problemOf(new Error('boom')).code).toBe(Code.Unknown);
  });
});

suite('describe', () => {
  it('names the code in words', () => {
    expect(codeName(Code.PermissionDenied)).toBe('Permission denied');
    expect(codeName(Code.Unauthenticated)).toBe('Unauthenticated');
    expect(describe({ code: Code.InvalidArgument, field: 'name', message: 'is empty' }))
      .toBe('Invalid argument: name: is empty');
  });
});
