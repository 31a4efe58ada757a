import { beforeEach, describe, expect, it } from 'vitest';
import {
  currentToken, forgetReturnTo, isConsolePath, keepPendingLogin, keepReturnTo, loginCodeOf, onTokenChange, returnTo, setToken,
  takePendingLogin,
} from './credential';

class MemoryStorage {
  private items = new Map<string, string>();
  getItem(key: string) { return this.items.get(key) ?? null; }
  setItem(key: string, value: string) { this.items.set(key, value); }
  removeItem(key: string) { this.items.delete(key); }
}

beforeEach(() => {
  (globalThis as { sessionStorage?: unknown }).sessionStorage = new MemoryStorage();
  setToken(null);
});

describe('credential', () => {
  it('keeps the token in session storage and tells listeners', () => {
    let calls = 0;
    const stop = onTokenChange(() => { calls += 1; });
    setToken('cc_live_x');
    expect(currentToken()).toBe('cc_live_x');
    expect(sessionStorage.getItem('cc.credential')).toBe('cc_live_x');
    setToken(null);
    expect(currentToken()).toBeNull();
    stop();
    setToken('again');
    expect(calls).toBe(2);
  });

  it('hands a pending login out once, and not once expired', () => {
    keepPendingLogin({ binding: 'cc_bind_1', tenant: 'acme', expires: 2000 });
    expect(takePendingLogin(1000)?.binding).toBe('cc_bind_1');
    expect(takePendingLogin(1000)).toBeNull();
    keepPendingLogin({ binding: 'cc_bind_2', tenant: 'acme', expires: 2000 });
    expect(takePendingLogin(3000)).toBeNull();
  });

  it('reads the login code from the fragment', () => {
    expect(loginCodeOf('#code=abc123')).toBe('abc123');
    expect(loginCodeOf('#other=1')).toBeNull();
    expect(loginCodeOf('')).toBeNull();
  });
});

describe('return to', () => {
  it('keeps a console page until told to forget it', () => {
    keepReturnTo('/audit?actor=x');
    expect(returnTo()).toBe('/audit?actor=x');
    forgetReturnTo();
    expect(returnTo()).toBeNull();
  });

  it('keeps no other origin, and not the sign-in page', () => {
    for (const path of ['//elsewhere.example/x', '/\\elsewhere', 'https://elsewhere.example', '/sign-in', '/sign-in?x=1', '/', '']) {
      expect(isConsolePath(path)).toBe(false);
      keepReturnTo(path);
      expect(returnTo()).toBeNull();
    }
    expect(isConsolePath('/sign-in-help')).toBe(true);
  });
});
