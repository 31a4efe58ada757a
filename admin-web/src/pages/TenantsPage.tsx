// Tenants, for platform operators: create, suspend, resume, delete.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { admin } from '../api/clients';
import { problemOf } from '../api/errors';
import { formatTime } from '../api/format';
import { Dialog } from '../components/Dialog';
import { Problem, TextField } from '../components/forms';
import { Loading, PageHeader } from '../components/misc';
import { TenantState, type Tenant } from '../gen/codexcontinue/v1/admin_pb.js';

const STATES: Record<number, string> = {
  [TenantState.ACTIVE]: 'active', [TenantState.SUSPENDED]: 'suspended', [TenantState.DELETED]: 'deleted',
};

export default function TenantsPage() {
  const queries = useQueryClient();
  const [deleting, setDeleting] = useState<Tenant>();
  const list = useQuery({ queryKey: ['tenants'], queryFn: () => admin.listTenants({ pageSize: 500 }) });
  const refresh = () => void queries.invalidateQueries({ queryKey: ['tenants'] });
  const create = useMutation({
    mutationFn: (form: FormData) => admin.createTenant({
      slug: String(form.get('slug') ?? '').trim(),
      displayName: String(form.get('displayName') ?? '').trim(),
    }),
    onSuccess: refresh,
  });
  const change = useMutation({ mutationFn: (action: () => Promise<unknown>) => action(), onSuccess: refresh });
  const remove = useMutation({
    mutationFn: ({ tenant, confirm }: { tenant: Tenant; confirm: string }) => admin.deleteTenant({ tenantId: tenant.id, confirmSlug: confirm }),
    onSuccess: () => { setDeleting(undefined); refresh(); },
  });
  const problem = create.error ? problemOf(create.error) : undefined;
  const removeProblem = remove.error ? problemOf(remove.error) : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    create.mutate(new FormData(form), { onSuccess: () => form.reset() });
  };
  const confirmDelete = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (deleting) remove.mutate({ tenant: deleting, confirm: String(new FormData(event.currentTarget).get('confirm') ?? '') });
  };

  return (
    <section>
      <PageHeader title="Tenants" />
      <form className="card row-form" onSubmit={submit} aria-labelledby="tenant-form-title">
        <h2 id="tenant-form-title">New tenant</h2>
        <TextField label="Slug" name="slug" required pattern="[a-z0-9-]{3,63}" field="slug" problem={problem} hint="3–63 of a–z, 0–9 and -." />
        <TextField label="Display name" name="displayName" field="display_name" problem={problem} />
        <button type="submit" className="primary" disabled={create.isPending}>Create tenant</button>
      </form>
      <Problem problem={problem} fields={['slug', 'display_name']} />
      <Problem problem={change.error ? problemOf(change.error) : undefined} />
      {list.isPending && <Loading what="tenants" />}
      <Problem problem={list.error ? problemOf(list.error) : undefined} />
      {list.data && (
        <table>
          <caption className="visually-hidden">Tenants</caption>
          <thead><tr><th scope="col">Tenant</th><th scope="col">State</th><th scope="col">Created</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            {list.data.tenants.map((tenant) => (
              <tr key={tenant.id}>
                <td>{tenant.displayName || tenant.slug} <small className="muted">{tenant.slug}</small></td>
                <td>{STATES[tenant.state] ?? 'unknown'}</td>
                <td>{formatTime(tenant.createTime)}</td>
                <td className="actions">
                  {tenant.state === TenantState.ACTIVE && (
                    <button type="button" onClick={() => change.mutate(() => admin.suspendTenant({ tenantId: tenant.id, reason: 'suspended from the console' }))}
                      aria-label={`Suspend ${tenant.slug}`}>Suspend</button>
                  )}
                  {tenant.state === TenantState.SUSPENDED && (
                    <button type="button" onClick={() => change.mutate(() => admin.resumeTenant({ tenantId: tenant.id }))}
                      aria-label={`Resume ${tenant.slug}`}>Resume</button>
                  )}
                  {tenant.state !== TenantState.DELETED && (
                    <button type="button" className="danger" onClick={() => setDeleting(tenant)} aria-label={`Delete ${tenant.slug}`}>Delete</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Dialog title="Delete tenant?" open={Boolean(deleting)} onClose={() => setDeleting(undefined)}>
        <form onSubmit={confirmDelete}>
          <p>Every credential of <strong>{deleting?.slug}</strong> stops working and its data and keys are destroyed. Type its slug to confirm.</p>
          <TextField label="Slug" name="confirm" required autoComplete="off" field="confirm_slug" problem={removeProblem} />
          <Problem problem={removeProblem} fields={['confirm_slug']} />
          <button type="submit" className="danger" disabled={remove.isPending}>Delete tenant</button>
        </form>
      </Dialog>
    </section>
  );
}
