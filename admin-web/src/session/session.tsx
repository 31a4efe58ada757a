// The signed-in caller: who they are (WhoAmI), how they signed in, and signing out (on
// request, after the idle limit, or when the server stops accepting the credential).
// Finishes an SSO login when the page is opened with the one-time code in its fragment.
import { useQueryClient } from '@tanstack/react-query';
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { auth, whenUnauthenticated } from '../api/clients';
import { problemOf } from '../api/errors';
import type { Principal } from '../gen/codexcontinue/v1/auth_pb.js';
import { currentToken, loginCodeOf, onTokenChange, setToken, takePendingLogin } from './credential';
import { IDLE_LIMIT_MS, idleTimer } from './idle';

/** Why the console is at the sign-in page. */
export type SignOutReason = 'requested' | 'idle' | 'expired' | null;

export interface SessionState {
  status: 'loading' | 'signedOut' | 'signedIn';
  principal?: Principal;
  /** The credential is an API key (no session to refresh or end). */
  apiKey: boolean;
  /** Why the last sign-out happened, to say so on the sign-in page. */
  reason: SignOutReason;
  /** A login that failed on its way back from the identity provider. */
  loginError?: string;
  signInWithKey(key: string): Promise<void>;
  signOut(reason?: SignOutReason): Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

let boot: Promise<string | undefined> | undefined;

/** Trades the login code in the URL for a session, once per page load; the error if any. */
function firstLoad(): Promise<string | undefined> {
  boot ??= (async () => {
    const code = loginCodeOf(window.location.hash);
    if (!code) return undefined;
    history.replaceState(null, '', window.location.pathname + window.location.search);
    const pending = takePendingLogin();
    if (!pending) return 'This sign-in was not started in this tab, or it took too long. Start again.';
    try {
      const done = await auth.exchangeLoginCode({ code, loginBinding: pending.binding });
      setToken(done.session?.token ?? null);
      return undefined;
    } catch (error) {
      return problemOf(error).message;
    }
  })();
  return boot;
}

/** Refresh a session's sliding expiry this often while the user is active. */
const REFRESH_EVERY_MS = 5 * 60 * 1000;

export function SessionProvider({ children }: { children: ReactNode }) {
  const queries = useQueryClient();
  const [status, setStatus] = useState<SessionState['status']>('loading');
  const [principal, setPrincipal] = useState<Principal>();
  const [reason, setReason] = useState<SignOutReason>(null);
  const [loginError, setLoginError] = useState<string>();
  const active = useRef(false);

  const forget = useCallback((why: SignOutReason) => {
    setToken(null);
    queries.clear();
    setPrincipal(undefined);
    setReason(why);
    setStatus('signedOut');
  }, [queries]);

  const identify = useCallback(async () => {
    const { principal } = await auth.whoAmI({});
    setPrincipal(principal);
    setReason(null);
    setStatus('signedIn');
  }, []);

  // First load: finish an SSO login, or pick up the tab's credential.
  useEffect(() => {
    let cancelled = false;
    firstLoad().then((error) => {
      if (cancelled) return;
      if (error) setLoginError(error);
      if (!currentToken()) {
        setStatus('signedOut');
        return;
      }
      identify().catch(() => { if (!cancelled) forget('expired'); });
    });
    return () => { cancelled = true; };
  }, [identify, forget]);

  useEffect(() => {
    whenUnauthenticated(() => forget('expired'));
    return onTokenChange(() => { if (!currentToken()) setStatus('signedOut'); });
  }, [forget]);

  const apiKey = Boolean(principal?.apiKeyId);

  const signOut = useCallback(async (why: SignOutReason = 'requested') => {
    if (!apiKey && currentToken()) {
      try { await auth.logout({}); } catch { /* the session may be gone already */ }
    }
    forget(why);
  }, [apiKey, forget]);

  // Idle limit and sliding refresh while signed in.
  useEffect(() => {
    if (status !== 'signedIn') return;
    const timer = idleTimer(IDLE_LIMIT_MS, () => { void signOut('idle'); });
    const onActivity = () => { timer.touch(); active.current = true; };
    const events = ['keydown', 'pointerdown', 'wheel', 'touchstart'] as const;
    for (const name of events) window.addEventListener(name, onActivity, { passive: true });
    const refresh = apiKey ? undefined : setInterval(() => {
      if (!active.current) return;
      active.current = false;
      auth.refreshSession({}).catch(() => { /* an expired session is handled by the interceptor */ });
    }, REFRESH_EVERY_MS);
    return () => {
      timer.stop();
      clearInterval(refresh);
      for (const name of events) window.removeEventListener(name, onActivity);
    };
  }, [status, apiKey, signOut]);

  const signInWithKey = useCallback(async (key: string) => {
    setToken(key.trim());
    try {
      await identify();
    } catch (error) {
      setToken(null);
      setReason(null);
      setStatus('signedOut');
      throw error;
    }
  }, [identify]);

  const value = useMemo<SessionState>(() => ({
    status, principal, apiKey, reason, loginError, signInWithKey, signOut,
  }), [status, principal, apiKey, reason, loginError, signInWithKey, signOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

/** The session; only inside [`SessionProvider`]. */
export function useSession(): SessionState {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside SessionProvider');
  return session;
}

/** The signed-in caller's roles (empty when signed out). */
export function useRoles(): readonly string[] {
  return useSession().principal?.roles ?? [];
}
