// Custom permissions: extra (object, action) grants on a role, e.g. `plugin/weather` `use`
// for role `forecasters` (a new role name makes a custom role).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { FormEvent } from 'react';
import { admin } from '../api/clients';
import { problemOf } from '../api/errors';
import { Problem, TextField } from '../components/forms';
import { Empty } from '../components/misc';
import type { Policy } from '../gen/codexcontinue/v1/admin_pb.js';

export function Policies({ roles }: { roles: string[] }) {
  const queries = useQueryClient();
  const policies = useQuery({ queryKey: ['policies'], queryFn: () => admin.listPolicies({ pageSize: 500 }) });
  const refresh = () => {
    void queries.invalidateQueries({ queryKey: ['policies'] });
    void queries.invalidateQueries({ queryKey: ['roles'] });
  };
  const add = useMutation({
    mutationFn: (form: FormData) => admin.addPolicy({
      policy: {
        role: String(form.get('role') ?? '').trim(),
        permission: { object: String(form.get('object') ?? '').trim(), action: String(form.get('action') ?? '').trim() },
      },
    }),
    onSuccess: refresh,
  });
  const remove = useMutation({ mutationFn: (policy: Policy) => admin.removePolicy({ policy }), onSuccess: refresh });
  const problem = add.error ? problemOf(add.error) : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    add.mutate(new FormData(form), { onSuccess: () => form.reset() });
  };
  const list = policies.data?.policies ?? [];
  return (
    <section aria-labelledby="policies-title">
      <h2 id="policies-title">Custom permissions</h2>
      <Problem problem={policies.error ? problemOf(policies.error) : undefined} />
      <Problem problem={remove.error ? problemOf(remove.error) : undefined} />
      {policies.isSuccess && list.length === 0 && <Empty>None: the built-in roles apply.</Empty>}
      {list.length > 0 && (
        <table>
          <caption className="visually-hidden">Custom permissions</caption>
          <thead><tr><th scope="col">Role</th><th scope="col">Object</th><th scope="col">Action</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            {list.map((p) => (
              <tr key={`${p.role}:${p.permission?.object}:${p.permission?.action}`}>
                <td>{p.role}</td>
                <td className="mono">{p.permission?.object}</td>
                <td className="mono">{p.permission?.action}</td>
                <td><button type="button" onClick={() => remove.mutate(p)}
                  aria-label={`Remove ${p.permission?.object}:${p.permission?.action} from ${p.role}`}>Remove</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="card row-form" onSubmit={submit} aria-label="Add a permission">
        <TextField label="Role" name="role" required list="policy-roles" field="policy.role" problem={problem} />
        <datalist id="policy-roles">{roles.map((r) => <option key={r} value={r} />)}</datalist>
        <TextField label="Object" name="object" required placeholder="plugin/weather" field="policy.permission.object" problem={problem} />
        <TextField label="Action" name="action" required placeholder="use" field="policy.permission.action" problem={problem} />
        <button type="submit" className="primary" disabled={add.isPending}>Add permission</button>
      </form>
      <Problem problem={problem} fields={['policy']} />
    </section>
  );
}
