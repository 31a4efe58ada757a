// Users and roles: find users, grant and take roles, disable, end sessions, delete; the
// tenant's roles with their permissions.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { admin } from '../api/clients';
import { problemOf } from '../api/errors';
import { formatTime } from '../api/format';
import { Dialog } from '../components/Dialog';
import { Problem, TextField } from '../components/forms';
import { Empty, Loading, PageHeader } from '../components/misc';
import type { User } from '../gen/codexcontinue/v1/admin_pb.js';
import { allows } from '../session/access';
import { useRoles } from '../session/session';
import { Policies } from './Policies';

export default function UsersPage() {
  const queries = useQueryClient();
  const canWrite = allows(useRoles(), 'users.write');
  const [query, setQuery] = useState('');
  const [deleting, setDeleting] = useState<User>();
  const users = useQuery({ queryKey: ['users', query], queryFn: () => admin.listUsers({ pageSize: 200, query }) });
  // Roles are readable by those who manage them (auditors read users only).
  const roles = useQuery({ queryKey: ['roles'], enabled: canWrite, queryFn: () => admin.listRoles({ pageSize: 200 }) });
  const refresh = () => void queries.invalidateQueries({ queryKey: ['users'] });
  const change = useMutation({
    mutationFn: async (action: () => Promise<unknown>) => action(),
    onSuccess: refresh,
  });
  const search = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    setQuery(String(new FormData(event.currentTarget).get('q') ?? ''));
  };
  const grant = (user: User) => (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const role = String(new FormData(event.currentTarget).get('role') ?? '');
    if (role) change.mutate(() => admin.grantRole({ userId: user.id, role }));
  };
  const roleNames = roles.data?.roles.map((r) => r.name) ?? [];

  return (
    <section>
      <PageHeader title="Users and roles" />
      <form className="row-form" role="search" onSubmit={search}>
        <TextField label="Find users" name="q" defaultValue={query} placeholder="name or email" />
        <button type="submit">Search</button>
      </form>
      <Problem problem={change.error ? problemOf(change.error) : undefined} />
      <Problem problem={users.error ? problemOf(users.error) : undefined} />
      {users.isPending && <Loading what="users" />}
      {users.isSuccess && users.data.users.length === 0 && <Empty>No users match.</Empty>}
      {users.data && users.data.users.length > 0 && (
        <table>
          <caption className="visually-hidden">Users</caption>
          <thead><tr><th scope="col">User</th><th scope="col">Roles</th><th scope="col">Last login</th><th scope="col">State</th>{canWrite && <th scope="col">Actions</th>}</tr></thead>
          <tbody>
            {users.data.users.map((user) => (
              <tr key={user.id}>
                <td>{user.displayName || user.email}<br /><small className="muted">{user.email}</small></td>
                <td>
                  <ul className="chips">
                    {user.roles.map((role) => (
                      <li key={role}>
                        {role}
                        {canWrite && (
                          <button type="button" className="ghost" aria-label={`Take ${role} from ${user.email}`}
                            onClick={() => change.mutate(() => admin.revokeRole({ userId: user.id, role }))}>×</button>
                        )}
                      </li>
                    ))}
                  </ul>
                  {canWrite && (
                    <form className="inline-form" onSubmit={grant(user)}>
                      <label className="visually-hidden" htmlFor={`grant-${user.id}`}>Role to give {user.email}</label>
                      <select id={`grant-${user.id}`} name="role" defaultValue="">
                        <option value="">Add role…</option>
                        {roleNames.filter((r) => !user.roles.includes(r)).map((r) => <option key={r} value={r}>{r}</option>)}
                      </select>
                      <button type="submit">Grant</button>
                    </form>
                  )}
                </td>
                <td>{formatTime(user.lastLoginTime)}</td>
                <td>{user.disabled ? 'disabled' : 'active'}</td>
                {canWrite && (
                  <td className="actions">
                    <button type="button" onClick={() => change.mutate(() => admin.setUserDisabled({ userId: user.id, disabled: !user.disabled }))}>
                      {user.disabled ? 'Enable' : 'Disable'}
                    </button>
                    <button type="button" onClick={() => change.mutate(() => admin.revokeUserSessions({ userId: user.id }))}>End sessions</button>
                    <button type="button" className="danger" onClick={() => setDeleting(user)}>Delete</button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}

      {canWrite && <h2>Roles</h2>}
      <Problem problem={roles.error ? problemOf(roles.error) : undefined} />
      {roles.data && (
        <table>
          <caption className="visually-hidden">Roles and their permissions</caption>
          <thead><tr><th scope="col">Role</th><th scope="col">Kind</th><th scope="col">Permissions</th></tr></thead>
          <tbody>
            {roles.data.roles.map((role) => (
              <tr key={role.name}>
                <td>{role.name}</td>
                <td>{role.builtin ? 'built-in' : 'custom'}</td>
                <td className="mono">{role.permissions.map((p) => `${p.object}:${p.action}`).join(' ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      {canWrite && <Policies roles={roleNames} />}

      <Dialog title="Delete user?" open={Boolean(deleting)} onClose={() => setDeleting(undefined)}>
        <p>{deleting?.email} is deleted and their data crypto-shredded. This cannot be undone.</p>
        <div className="row">
          <button type="button" className="danger" onClick={() => {
            const user = deleting;
            setDeleting(undefined);
            if (user) change.mutate(() => admin.deleteUser({ userId: user.id }));
          }}>Delete</button>
          <button type="button" onClick={() => setDeleting(undefined)}>Cancel</button>
        </div>
      </Dialog>
    </section>
  );
}
