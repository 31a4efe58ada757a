// SSO setup: the tenant's OpenID Connect provider, who may sign in, and which roles the
// provider's groups bring. Owners change it; admins read it.
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { admin } from '../api/clients';
import { problemOf } from '../api/errors';
import { Problem, TextField } from '../components/forms';
import { Loading, PageHeader } from '../components/misc';
import { allows } from '../session/access';
import { useRoles } from '../session/session';
import { formatGroupRoles, parseGroupRoles, splitList } from '../settings/lists';

export default function SsoPage() {
  const queries = useQueryClient();
  const canWrite = allows(useRoles(), 'sso.write');
  const [formErrors, setFormErrors] = useState<string[]>([]);
  const current = useQuery({ queryKey: ['idp'], queryFn: () => admin.getIdentityProvider({}) });
  const save = useMutation({
    mutationFn: (form: FormData) => {
      const { map, errors } = parseGroupRoles(String(form.get('groupRoles') ?? ''));
      setFormErrors(errors);
      if (errors.length) return Promise.reject(new Error(errors.join('; ')));
      return admin.setIdentityProvider({
        identityProvider: {
          issuerUrl: String(form.get('issuer') ?? '').trim(),
          clientId: String(form.get('clientId') ?? '').trim(),
          allowedEmailDomains: splitList(String(form.get('domains') ?? '')),
          groupsClaim: String(form.get('groupsClaim') ?? '').trim(),
          groupRoles: map,
          scopes: splitList(String(form.get('scopes') ?? '')),
        },
        clientSecret: String(form.get('secret') ?? ''),
      });
    },
    onSuccess: () => void queries.invalidateQueries({ queryKey: ['idp'] }),
  });
  const problem = save.error && formErrors.length === 0 ? problemOf(save.error) : undefined;
  const idp = current.data?.identityProvider;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    save.mutate(new FormData(event.currentTarget));
  };
  const field = 'identity_provider';

  return (
    <section>
      <PageHeader title="Single sign-on" />
      <p>Register a confidential client at your provider with the redirect URI
        {' '}<code>{window.location.origin}/auth/callback</code> (PKCE is always used).</p>
      {current.isPending && <Loading what="the provider settings" />}
      <Problem problem={current.error ? problemOf(current.error) : undefined} />
      {current.isSuccess && (
        <form className="card" onSubmit={submit} aria-labelledby="idp-title" key={idp?.updateTime ? String(idp.updateTime.seconds) : 'new'}>
          <h2 id="idp-title">{idp ? 'Identity provider' : 'No identity provider yet'}</h2>
          {idp?.updateTime && <p className="muted">Last changed {timestampDate(idp.updateTime).toLocaleString()}.</p>}
          <fieldset disabled={!canWrite}>
            <legend className="visually-hidden">Settings</legend>
            <TextField label="Issuer URL" name="issuer" type="url" required defaultValue={idp?.issuerUrl} field={`${field}.issuer_url`} problem={problem} />
            <TextField label="Client id" name="clientId" required defaultValue={idp?.clientId} field={`${field}.client_id`} problem={problem} />
            <TextField label="Client secret" name="secret" type="password" autoComplete="off" field="client_secret" problem={problem}
              hint={idp?.clientSecretSet ? 'A secret is stored; leave empty to keep it.' : 'None stored yet.'} />
            <TextField label="Allowed email domains" name="domains" required defaultValue={idp?.allowedEmailDomains.join(', ')}
              field={`${field}.allowed_email_domains`} problem={problem} hint="Comma-separated; * allows any." />
            <TextField label="Groups claim" name="groupsClaim" defaultValue={idp?.groupsClaim ?? 'groups'} field={`${field}.groups_claim`} problem={problem} />
            <TextField label="Scopes besides openid" name="scopes" defaultValue={idp?.scopes.join(', ')} field={`${field}.scopes`} problem={problem} hint="Empty: email, profile." />
            <div className="field">
              <label htmlFor="group-roles">Group → roles</label>
              <textarea id="group-roles" name="groupRoles" rows={4} defaultValue={idp ? formatGroupRoles(idp.groupRoles) : ''}
                aria-describedby="group-roles-hint" placeholder="eng: member" />
              <small id="group-roles-hint" className="hint">One “group: role, role” per line; roles are granted at each login.</small>
              {formErrors.map((error) => <small key={error} className="field-error">{error}</small>)}
            </div>
          </fieldset>
          <Problem problem={problem} fields={[field, 'client_secret']} />
          {canWrite ? <button type="submit" className="primary" disabled={save.isPending}>Save</button>
            : <p className="muted">Only owners change who can sign in.</p>}
          {save.isSuccess && <p role="status" className="ok">Saved.</p>}
        </form>
      )}
    </section>
  );
}
