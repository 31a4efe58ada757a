// The console's frame: sign-in when signed out; otherwise the navigation the caller's
// roles allow, and the page of the current URL (a page the roles do not allow is refused
// here too, not only hidden). After sign-in it opens the page that was asked for.
import { Suspense, useEffect, useState } from 'react';
import { Navigate, NavLink, Route, Routes, useLocation } from 'react-router';
import { forgetReturnTo, isConsolePath, returnTo } from '../session/credential';
import { useSession } from '../session/session';
import { allows } from '../session/access';
import { PAGES } from './pages';
import { SignInPage } from '../pages/SignInPage';
import { Loading } from '../components/misc';

export function App() {
  const session = useSession();
  const location = useLocation();
  if (session.status === 'loading') {
    return <main className="center"><Loading what="your session" /></main>;
  }
  if (session.status === 'signedOut') {
    if (location.pathname !== '/sign-in') {
      return <Navigate to="/sign-in" replace state={{ from: location.pathname + location.search }} />;
    }
    return <SignInPage />;
  }
  const roles = session.principal?.roles ?? [];
  const visible = PAGES.filter((page) => allows(roles, page.area));
  const home = visible[0]?.path ?? 'nothing';
  return (
    <div className="shell">
      <a className="skip" href="#main">Skip to content</a>
      <header className="topbar">
        <span className="brand">CodexContinue</span>
        <span className="who">
          {session.principal?.email || session.principal?.displayName || 'API key'}
          {' · '}
          <span className="tenant">{session.principal?.tenantSlug}</span>
          {' · '}
          <span className="roles">{roles.join(', ') || 'no role'}</span>
        </span>
        <button type="button" className="ghost" onClick={() => void session.signOut('requested')}>Sign out</button>
      </header>
      <nav className="sidebar" aria-label="Console">
        <ul>
          {visible.map((page) => (
            <li key={page.path}><NavLink to={`/${page.path}`}>{page.title}</NavLink></li>
          ))}
        </ul>
      </nav>
      <main id="main" className="content" tabIndex={-1}>
        <Suspense fallback={<Loading what="the page" />}>
          <Routes>
            <Route path="/" element={<Landing home={home} />} />
            <Route path="/sign-in" element={<Landing home={home} />} />
            {PAGES.map((page) => (
              <Route
                key={page.path}
                path={`/${page.path}/*`}
                element={allows(roles, page.area) ? <page.component /> : <NotAllowed title={page.title} />}
              />
            ))}
            <Route path="*" element={<NotFound />} />
          </Routes>
        </Suspense>
      </main>
    </div>
  );
}

/** Just signed in (or at the start page): the page asked for before sign-in, else `home`. */
function Landing({ home }: { home: string }) {
  const location = useLocation();
  const [target] = useState(() => {
    const from = (location.state as { from?: unknown } | null)?.from;
    return (typeof from === 'string' && isConsolePath(from) ? from : null) ?? returnTo() ?? `/${home}`;
  });
  // Kept across the identity provider's redirect; used once.
  useEffect(() => forgetReturnTo(), []);
  return <Navigate to={target} replace />;
}

function NotAllowed({ title }: { title: string }) {
  return (
    <section>
      <h1>Not allowed</h1>
      <p>Your roles do not open “{title}”. Ask an owner or admin of your tenant.</p>
    </section>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>There is no such page in the console.</p>
    </section>
  );
}
