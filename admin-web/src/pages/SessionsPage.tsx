// My sessions: where the caller is signed in, and signing out of all of them at once
// (this one included, so the console returns to sign-in).
import { useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { auth } from '../api/clients';
import { problemOf } from '../api/errors';
import { formatTime } from '../api/format';
import { Dialog } from '../components/Dialog';
import { Problem } from '../components/forms';
import { Empty, Loading, PageHeader } from '../components/misc';
import { useSession } from '../session/session';

export default function SessionsPage() {
  const session = useSession();
  const [confirming, setConfirming] = useState(false);
  const sessions = useQuery({ queryKey: ['sessions'], queryFn: () => auth.listSessions({ pageSize: 200 }) });
  const everywhere = useMutation({
    mutationFn: () => auth.logoutEverywhere({}),
    // Every session is gone, this one too; an API key keeps working and stays signed in.
    onSuccess: () => {
      setConfirming(false);
      if (session.apiKey) void sessions.refetch();
      else void session.signOut('requested');
    },
  });

  return (
    <section>
      <PageHeader title="My sessions">
        <button type="button" className="danger" onClick={() => setConfirming(true)}>Sign out everywhere</button>
      </PageHeader>
      {session.apiKey && <p className="muted">You are signed in with an API key; these are the sessions of its owner.</p>}
      {sessions.isPending && <Loading what="sessions" />}
      <Problem problem={sessions.error ? problemOf(sessions.error) : undefined} />
      {sessions.data && sessions.data.sessions.length === 0 && <Empty>No active session.</Empty>}
      {sessions.data && sessions.data.sessions.length > 0 && (
        <table>
          <caption className="visually-hidden">Sessions</caption>
          <thead>
            <tr><th scope="col">Signed in</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col">Browser</th><th scope="col">Address</th><th scope="col"><span className="visually-hidden">This session</span></th></tr>
          </thead>
          <tbody>
            {sessions.data.sessions.map((item) => (
              <tr key={item.id}>
                <td>{formatTime(item.createTime)}</td>
                <td>{formatTime(item.lastUsedTime)}</td>
                <td>{formatTime(item.expireTime)}</td>
                <td>{item.userAgent || 'unknown'}</td>
                <td>{item.clientAddress || 'unknown'}</td>
                <td>{item.current && <strong>this session</strong>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <Dialog title="Sign out everywhere?" open={confirming} onClose={() => setConfirming(false)}>
        <p>Every session of yours ends at once, this one too. API keys keep working.</p>
        <Problem problem={everywhere.error ? problemOf(everywhere.error) : undefined} />
        <div className="row">
          <button type="button" className="danger" onClick={() => everywhere.mutate()} disabled={everywhere.isPending}>Sign out everywhere</button>
          <button type="button" onClick={() => setConfirming(false)}>Cancel</button>
        </div>
      </Dialog>
    </section>
  );
}
