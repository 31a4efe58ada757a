// Sign-in: through the tenant's identity provider (SSO), or by pasting an API key (the
// break-glass way in when SSO is down or not set up).
import { useMutation } from '@tanstack/react-query';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { useState, type FormEvent } from 'react';
import { useLocation } from 'react-router';
import { auth } from '../api/clients';
import { problemOf, type ApiProblem } from '../api/errors';
import { keepPendingLogin, keepReturnTo } from '../session/credential';
import { useSession } from '../session/session';
import { Problem, TextField } from '../components/forms';

const TENANT_KEY = 'cc.tenant';

const REASONS = {
  requested: 'You are signed out.',
  idle: 'You were signed out after a while without activity.',
  expired: 'Your session has ended. Sign in again.',
} as const;

export function SignInPage() {
  const session = useSession();
  const [tenant, setTenant] = useState(() => sessionStorage.getItem(TENANT_KEY) ?? '');
  const [key, setKey] = useState('');
  // The page that sent the user here, to open after the identity provider sends them back.
  const from = (useLocation().state as { from?: unknown } | null)?.from;

  const sso = useMutation({
    mutationFn: async (slug: string) => {
      const start = await auth.startLogin({ tenant: slug, redirectUri: '' });
      sessionStorage.setItem(TENANT_KEY, slug);
      if (typeof from === 'string') keepReturnTo(from);
      keepPendingLogin({
        binding: start.loginBinding,
        tenant: slug,
        expires: start.expireTime ? timestampDate(start.expireTime).getTime() : Date.now() + 600_000,
      });
      window.location.assign(start.authorizationUrl);
    },
  });
  const withKey = useMutation({ mutationFn: (value: string) => session.signInWithKey(value) });
  const ssoProblem: ApiProblem | undefined = sso.error ? problemOf(sso.error) : undefined;
  const keyProblem: ApiProblem | undefined = withKey.error ? problemOf(withKey.error) : undefined;

  const startSso = (event: FormEvent) => {
    event.preventDefault();
    sso.mutate(tenant.trim());
  };
  const useKey = (event: FormEvent) => {
    event.preventDefault();
    withKey.mutate(key);
  };

  return (
    <main className="signin" id="main">
      <h1>Sign in to CodexContinue</h1>
      {session.reason && <p className="notice" role="status">{REASONS[session.reason]}</p>}
      {session.loginError && <p className="problem" role="alert">Sign-in failed: {session.loginError}</p>}
      <section aria-labelledby="sso-title" className="card">
        <h2 id="sso-title">With your organisation’s account</h2>
        <form onSubmit={startSso}>
          <TextField
            label="Organisation (tenant)"
            name="tenant"
            field="tenant"
            problem={ssoProblem}
            autoComplete="organization"
            required
            value={tenant}
            onChange={(e) => setTenant(e.target.value)}
            hint="The short name your administrator gave you, e.g. acme-health."
          />
          <Problem problem={ssoProblem} fields={['tenant']} />
          <button type="submit" className="primary" disabled={sso.isPending || sso.isSuccess}>
            {sso.isPending || sso.isSuccess ? 'Opening your sign-in page…' : 'Continue with SSO'}
          </button>
        </form>
      </section>
      <section aria-labelledby="key-title" className="card">
        <h2 id="key-title">With an API key</h2>
        <p className="muted">For administrators when single sign-on is not available. The key is kept only in this tab.</p>
        <form onSubmit={useKey}>
          <TextField
            label="API key"
            name="api-key"
            type="password"
            autoComplete="off"
            spellCheck={false}
            required
            value={key}
            onChange={(e) => setKey(e.target.value)}
          />
          <Problem problem={keyProblem} />
          <button type="submit" disabled={withKey.isPending}>Sign in with key</button>
        </form>
      </section>
    </main>
  );
}
