import { describe, expect, it } from 'vitest';
import { allows, grantableKeyRoles } from './access';

describe('allows', () => {
  it('gives owners every tenant area but tenants', () => {
    for (const area of ['chat', 'apiKeys', 'audit', 'audit.retention', 'usage', 'budgets', 'users', 'sso.write'] as const) {
      expect(allows(['owner'], area)).toBe(true);
    }
    expect(allows(['owner'], 'tenants')).toBe(false);
  });

  it('keeps viewers out of admin areas', () => {
    expect(allows(['viewer'], 'chat')).toBe(true);
    expect(allows(['viewer'], 'chat.write')).toBe(false);
    for (const area of ['apiKeys', 'audit', 'usage', 'budgets', 'users', 'sso', 'providers', 'profiles'] as const) {
      expect(allows(['viewer'], area)).toBe(false);
    }
  });

  it('lets auditors read the trail and usage, not change budgets or retention', () => {
    expect(allows(['auditor'], 'audit')).toBe(true);
    expect(allows(['auditor'], 'usage')).toBe(true);
    expect(allows(['auditor'], 'budgets')).toBe(false);
    expect(allows(['admin'], 'audit.retention')).toBe(false);
  });

  it('adds up roles, and knows nothing of custom ones', () => {
    expect(allows(['member', 'auditor'], 'audit')).toBe(true);
    expect(allows(['forecasters'], 'chat')).toBe(false);
    expect(allows(['platform-admin'], 'tenants')).toBe(true);
  });

  it('shows everyone their sessions, and the tenant settings to owners and admins only', () => {
    for (const role of ['owner', 'member', 'viewer', 'auditor', 'platform-admin']) {
      expect(allows([role], 'sessions')).toBe(true);
    }
    expect(allows(['admin'], 'tenant')).toBe(true);
    expect(allows(['auditor'], 'tenant')).toBe(false);
  });
});

describe('grantableKeyRoles', () => {
  it('never offers platform-admin', () => {
    expect(grantableKeyRoles(['owner', 'platform-admin'])).toEqual(['owner']);
  });
});
