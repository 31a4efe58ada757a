// API keys: create one (its secret shown once, with a copy button), list, revoke.
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { auth } from '../api/clients';
import { problemOf } from '../api/errors';
import { dayEnd, formatTime } from '../api/format';
import { Dialog } from '../components/Dialog';
import { CheckField, Problem, TextField } from '../components/forms';
import { CopyButton, Empty, Loading, PageHeader } from '../components/misc';
import type { ApiKey, CreateApiKeyResponse } from '../gen/codexcontinue/v1/auth_pb.js';
import { grantableKeyRoles } from '../session/access';
import { useRoles } from '../session/session';

export default function ApiKeysPage() {
  const queries = useQueryClient();
  const roles = grantableKeyRoles(useRoles());
  const [inactive, setInactive] = useState(false);
  const [created, setCreated] = useState<CreateApiKeyResponse>();
  const [revoking, setRevoking] = useState<ApiKey>();
  const keys = useQuery({
    queryKey: ['api-keys', inactive],
    queryFn: () => auth.listApiKeys({ pageSize: 200, includeInactive: inactive }),
  });
  const create = useMutation({
    mutationFn: (form: FormData) => {
      const expires = dayEnd(String(form.get('expires') ?? ''));
      return auth.createApiKey({
        name: String(form.get('name') ?? ''),
        roles: form.getAll('roles').map(String),
        expireTime: expires ? timestampFromDate(expires) : undefined,
      });
    },
    onSuccess: (response) => {
      setCreated(response);
      void queries.invalidateQueries({ queryKey: ['api-keys'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (key: ApiKey) => auth.revokeApiKey({ apiKeyId: key.id }),
    onSuccess: () => {
      setRevoking(undefined);
      void queries.invalidateQueries({ queryKey: ['api-keys'] });
    },
  });
  const problem = create.error ? problemOf(create.error) : undefined;
  const onCreate = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    create.mutate(new FormData(event.currentTarget));
    event.currentTarget.reset();
  };

  return (
    <section>
      <PageHeader title="API keys" />
      <form className="card" onSubmit={onCreate} aria-labelledby="new-key-title">
        <h2 id="new-key-title">New key</h2>
        <TextField label="Name" name="name" field="name" problem={problem} required maxLength={100} placeholder="ci pipeline" />
        <fieldset>
          <legend>Roles (none: member)</legend>
          {roles.map((role) => <CheckField key={role} label={role} name="roles" value={role} />)}
        </fieldset>
        <TextField label="Expires after (optional)" name="expires" type="date" field="expire_time" problem={problem} />
        <Problem problem={problem} fields={['name', 'expire_time', 'roles']} />
        <button type="submit" className="primary" disabled={create.isPending}>Create key</button>
      </form>

      <div className="toolbar">
        <h2>Keys</h2>
        <CheckField label="Show revoked and expired" checked={inactive} onChange={(e) => setInactive(e.target.checked)} />
      </div>
      {keys.isPending && <Loading what="keys" />}
      <Problem problem={keys.error ? problemOf(keys.error) : undefined} />
      {keys.data && keys.data.apiKeys.length === 0 && <Empty>No keys.</Empty>}
      {keys.data && keys.data.apiKeys.length > 0 && (
        <table>
          <caption className="visually-hidden">API keys</caption>
          <thead>
            <tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Roles</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col">State</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr>
          </thead>
          <tbody>
            {keys.data.apiKeys.map((key) => (
              <tr key={key.id}>
                <td>{key.name}</td>
                <td><code>{key.prefix}</code></td>
                <td>{key.roles.join(', ')}</td>
                <td>{formatTime(key.createTime)}</td>
                <td>{formatTime(key.lastUsedTime)}</td>
                <td>{key.expireTime ? formatTime(key.expireTime) : 'never'}</td>
                <td>{key.revokeTime ? `revoked ${formatTime(key.revokeTime)}` : 'active'}</td>
                <td>{!key.revokeTime && <button type="button" className="danger" onClick={() => setRevoking(key)} aria-label={`Revoke ${key.name}`}>Revoke</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <Dialog title="Your new API key" open={Boolean(created)} onClose={() => setCreated(undefined)}>
        <p>Copy it now: it is shown only this once.</p>
        <p className="secret"><code data-testid="new-key-secret">{created?.secret}</code></p>
        <div className="row">
          <CopyButton text={created?.secret ?? ''} label="Copy key" />
          <button type="button" onClick={() => setCreated(undefined)}>Done</button>
        </div>
      </Dialog>
      <Dialog title="Revoke key?" open={Boolean(revoking)} onClose={() => setRevoking(undefined)}>
        <p>“{revoking?.name}” (<code>{revoking?.prefix}</code>) stops working at once, everywhere.</p>
        <Problem problem={revoke.error ? problemOf(revoke.error) : undefined} />
        <div className="row">
          <button type="button" className="danger" onClick={() => revoking && revoke.mutate(revoking)} disabled={revoke.isPending}>Revoke</button>
          <button type="button" onClick={() => setRevoking(undefined)}>Cancel</button>
        </div>
      </Dialog>
    </section>
  );
}
