// Where the caller's credential lives: in memory, mirrored into the tab's sessionStorage so
// a reload keeps the user signed in. Never localStorage: a credential must not outlive the
// tab or be shared between tabs. Also keeps the SSO login binding, and the page the user
// asked for, across the redirect to the identity provider.

const TOKEN_KEY = 'cc.credential';
const BINDING_KEY = 'cc.login';
const RETURN_KEY = 'cc.return';

let token: string | null = null;
const listeners = new Set<() => void>();

function storage(): Storage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null;
  }
}

/** The bearer credential (session token or API key), if signed in. */
export function currentToken(): string | null {
  if (token === null) token = storage()?.getItem(TOKEN_KEY) ?? null;
  return token;
}

/** Replaces the credential (null signs out) and tells the listeners. */
export function setToken(value: string | null): void {
  token = value;
  const store = storage();
  if (value === null) store?.removeItem(TOKEN_KEY);
  else store?.setItem(TOKEN_KEY, value);
  for (const listener of listeners) listener();
}

/** Calls `listener` whenever the credential changes; returns the unsubscribe function. */
export function onTokenChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** A login begun with StartLogin, kept while the browser visits the identity provider. */
export interface PendingLogin {
  binding: string;
  tenant: string;
  /** Milliseconds since the epoch after which the server no longer accepts it. */
  expires: number;
}

export function keepPendingLogin(login: PendingLogin): void {
  storage()?.setItem(BINDING_KEY, JSON.stringify(login));
}

/** The pending login, removed from storage (a binding is used once). */
export function takePendingLogin(now = Date.now()): PendingLogin | null {
  const store = storage();
  const raw = store?.getItem(BINDING_KEY);
  store?.removeItem(BINDING_KEY);
  if (!raw) return null;
  try {
    const login = JSON.parse(raw) as PendingLogin;
    return typeof login.binding === 'string' && login.expires > now ? login : null;
  } catch {
    return null;
  }
}

/** The one-time login code in a URL fragment such as `#code=abc`, if any. */
export function loginCodeOf(hash: string): string | null {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const code = params.get('code');
  return code && code.length > 0 ? code : null;
}

/** A console path (e.g. `/audit?actor=x`) to open after sign-in; others are ignored. */
export function keepReturnTo(path: string): void {
  if (isConsolePath(path)) storage()?.setItem(RETURN_KEY, path);
}

/** The kept path, if any; it stays until [`forgetReturnTo`]. */
export function returnTo(): string | null {
  const path = storage()?.getItem(RETURN_KEY) ?? null;
  return path && isConsolePath(path) ? path : null;
}

export function forgetReturnTo(): void {
  storage()?.removeItem(RETURN_KEY);
}

/** A path inside the console other than its start and sign-in pages. */
export function isConsolePath(path: string): boolean {
  return /^\/[^/\\]/.test(path) && !/^\/sign-in(?:[/?#]|$)/.test(path);
}
