// Tenant settings, for the tenant's owners and admins: its display name and the PHI policy
// of profiles that set none. Rate limits and the tenant's lifecycle stay with platform
// operators (Tenants).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { FormEvent } from 'react';
import { admin } from '../api/clients';
import { problemOf } from '../api/errors';
import { formatTime } from '../api/format';
import { Problem, SelectField, TextField } from '../components/forms';
import { Loading, PageHeader } from '../components/misc';
import { PhiPolicy } from '../gen/codexcontinue/v1/common_pb.js';

const POLICIES: Record<number, string> = {
  [PhiPolicy.ALLOW]: 'allow: send prompts as they are',
  [PhiPolicy.REDACT]: 'redact: replace PHI before an external provider sees it',
  [PhiPolicy.REFUSE]: 'refuse: keep prompts with PHI from external providers',
};

export default function TenantSettingsPage() {
  const queries = useQueryClient();
  const tenant = useQuery({ queryKey: ['tenant'], queryFn: () => admin.getTenant({}) });
  const save = useMutation({
    mutationFn: (form: FormData) => admin.updateTenant({
      displayName: String(form.get('displayName') ?? ''),
      settings: { phiPolicy: Number(form.get('phiPolicy')) },
    }),
    onSuccess: (response) => queries.setQueryData(['tenant'], { tenant: response.tenant }),
  });
  const problem = save.error ? problemOf(save.error) : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    save.mutate(new FormData(event.currentTarget));
  };
  const current = tenant.data?.tenant;

  return (
    <section>
      <PageHeader title="Tenant settings" />
      {tenant.isPending && <Loading what="the tenant" />}
      <Problem problem={tenant.error ? problemOf(tenant.error) : undefined} />
      {current && (
        <form className="card" onSubmit={submit} aria-labelledby="tenant-settings-title" key={String(current.updateTime?.seconds ?? 0)}>
          <h2 id="tenant-settings-title">{current.slug}</h2>
          <p className="muted">Last changed {formatTime(current.updateTime)}.</p>
          <TextField label="Display name" name="displayName" defaultValue={current.displayName} required maxLength={200}
            field="display_name" problem={problem} />
          <SelectField label="PHI policy" name="phiPolicy" field="settings.phi_policy" problem={problem}
            defaultValue={String(current.settings?.phiPolicy || PhiPolicy.REDACT)}
            hint="For profiles that set no policy of their own.">
            {Object.entries(POLICIES).map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </SelectField>
          <Problem problem={problem} fields={['display_name', 'settings.phi_policy']} />
          <button type="submit" className="primary" disabled={save.isPending}>Save</button>
          {save.isSuccess && <p role="status" className="ok">Saved.</p>}
        </form>
      )}
    </section>
  );
}
