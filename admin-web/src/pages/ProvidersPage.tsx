// Model providers (where the tenant's models are served) and aliases (names that route
// to ordered provider/model targets).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { admin } from '../api/clients';
import { problemOf } from '../api/errors';
import { CheckField, Problem, SelectField, TextField } from '../components/forms';
import { Empty, Loading, PageHeader } from '../components/misc';
import { ProviderKind } from '../gen/codexcontinue/v1/admin_pb.js';
import { parseTargets, splitList } from '../settings/lists';

const KINDS: Record<number, string> = {
  [ProviderKind.OPENAI]: 'OpenAI',
  [ProviderKind.AZURE_OPENAI]: 'Azure OpenAI',
  [ProviderKind.OLLAMA]: 'Ollama',
  [ProviderKind.OPENAI_COMPATIBLE]: 'OpenAI-compatible',
  [ProviderKind.LOCAL]: 'Local',
};

export default function ProvidersPage() {
  return (
    <section>
      <PageHeader title="Providers and aliases" />
      <Providers />
      <Aliases />
    </section>
  );
}

function Providers() {
  const queries = useQueryClient();
  const providers = useQuery({ queryKey: ['providers'], queryFn: () => admin.listProviders({ pageSize: 200 }) });
  const refresh = () => void queries.invalidateQueries({ queryKey: ['providers'] });
  const save = useMutation({
    mutationFn: (form: FormData) => admin.setProvider({
      provider: {
        name: String(form.get('name') ?? '').trim(),
        kind: Number(form.get('kind')),
        endpoint: String(form.get('endpoint') ?? '').trim(),
        models: splitList(String(form.get('models') ?? '')),
        apiVersion: String(form.get('apiVersion') ?? '').trim(),
        onPremises: form.get('onPremises') === 'on',
      },
      credential: String(form.get('credential') ?? ''),
    }),
    onSuccess: refresh,
  });
  const remove = useMutation({ mutationFn: (name: string) => admin.deleteProvider({ name }), onSuccess: refresh });
  const problem = save.error ? problemOf(save.error) : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    save.mutate(new FormData(event.currentTarget));
  };
  const list = providers.data?.providers ?? [];
  return (
    <>
      <h2>Providers</h2>
      {providers.isPending && <Loading what="providers" />}
      <Problem problem={providers.error ? problemOf(providers.error) : undefined} />
      <Problem problem={remove.error ? problemOf(remove.error) : undefined} />
      {providers.isSuccess && list.length === 0 && <Empty>No providers.</Empty>}
      {list.length > 0 && (
        <table>
          <caption className="visually-hidden">Providers</caption>
          <thead>
            <tr>
              <th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Endpoint</th><th scope="col">Models</th>
              <th scope="col">Premises</th><th scope="col">Credential</th><th scope="col"><span className="visually-hidden">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr key={p.name}>
                <td>{p.name}{p.platformDefault && <small className="muted"> (platform)</small>}</td>
                <td>{KINDS[p.kind] ?? 'unknown'}</td>
                <td className="mono wrap">{p.endpoint}</td>
                <td>{p.models.join(', ')}</td>
                <td>{p.onPremises ? 'on premises' : 'external'}</td>
                <td>{p.credentialSet ? 'stored' : '—'}</td>
                <td>{!p.platformDefault && p.kind !== ProviderKind.LOCAL && (
                  <button type="button" className="danger" onClick={() => remove.mutate(p.name)} aria-label={`Delete provider ${p.name}`}>Delete</button>
                )}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="card" onSubmit={submit} aria-labelledby="provider-form-title">
        <h3 id="provider-form-title">Add or replace a provider</h3>
        <div className="grid">
          <TextField label="Name" name="name" required field="provider.name" problem={problem} placeholder="azure-eu" />
          <SelectField label="Kind" name="kind" field="provider.kind" problem={problem} defaultValue={String(ProviderKind.OPENAI_COMPATIBLE)}>
            {Object.entries(KINDS).filter(([k]) => Number(k) !== ProviderKind.LOCAL)
              .map(([k, label]) => <option key={k} value={k}>{label}</option>)}
          </SelectField>
          <TextField label="Endpoint" name="endpoint" type="url" field="provider.endpoint" problem={problem} placeholder="https://…/v1" />
          <TextField label="Models" name="models" field="provider.models" problem={problem} hint="Comma-separated, e.g. gpt-4o, gpt-4o-mini." />
          <TextField label="API version (Azure)" name="apiVersion" field="provider.api_version" problem={problem} />
          <TextField label="API key" name="credential" type="password" autoComplete="off" field="credential" problem={problem}
            hint="Empty keeps the stored one (dropped when the endpoint changes)." />
        </div>
        <CheckField label="Runs on our premises" name="onPremises" />
        <Problem problem={problem} fields={['provider', 'credential']} />
        <button type="submit" className="primary" disabled={save.isPending}>Save provider</button>
      </form>
    </>
  );
}

function Aliases() {
  const queries = useQueryClient();
  const [targetErrors, setTargetErrors] = useState<string[]>([]);
  const routes = useQuery({ queryKey: ['routes'], queryFn: () => admin.listModelRoutes({ pageSize: 200 }) });
  const refresh = () => void queries.invalidateQueries({ queryKey: ['routes'] });
  const save = useMutation({
    mutationFn: (form: FormData) => {
      const { targets, errors } = parseTargets(String(form.get('targets') ?? ''));
      setTargetErrors(errors);
      if (errors.length) return Promise.reject(new Error(errors.join('; ')));
      return admin.setModelRoute({
        route: {
          alias: String(form.get('alias') ?? '').trim(),
          targets,
          privateOnly: form.get('privateOnly') === 'on',
          timeoutMs: Number(form.get('timeoutMs') || 0),
          maxRetries: Number(form.get('maxRetries') || 0),
        },
      });
    },
    onSuccess: refresh,
  });
  const remove = useMutation({ mutationFn: (alias: string) => admin.deleteModelRoute({ alias }), onSuccess: refresh });
  const problem = save.error && targetErrors.length === 0 ? problemOf(save.error) : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    save.mutate(new FormData(event.currentTarget));
  };
  return (
    <>
      <h2>Aliases</h2>
      <Problem problem={routes.error ? problemOf(routes.error) : undefined} />
      <Problem problem={remove.error ? problemOf(remove.error) : undefined} />
      {routes.data && routes.data.routes.length === 0 && <Empty>No aliases.</Empty>}
      {routes.data && routes.data.routes.length > 0 && (
        <table>
          <caption className="visually-hidden">Aliases</caption>
          <thead>
            <tr>
              <th scope="col">Alias</th><th scope="col">Targets, in order</th><th scope="col">Private only</th>
              <th scope="col">Timeout</th><th scope="col">Retries</th><th scope="col"><span className="visually-hidden">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {routes.data.routes.map((r) => (
              <tr key={r.alias}>
                <td>{r.alias}</td>
                <td className="mono">{r.targets.map((t) => `${t.provider}/${t.model}`).join(' → ')}</td>
                <td>{r.privateOnly ? 'yes' : ''}</td>
                <td>{r.timeoutMs ? `${r.timeoutMs} ms` : 'default'}</td>
                <td>{r.maxRetries}</td>
                <td><button type="button" className="danger" onClick={() => remove.mutate(r.alias)} aria-label={`Delete alias ${r.alias}`}>Delete</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="card" onSubmit={submit} aria-labelledby="alias-form-title">
        <h3 id="alias-form-title">Add or replace an alias</h3>
        <div className="grid">
          <TextField label="Alias" name="alias" required field="route.alias" problem={problem} placeholder="fast" />
          <div className="field">
            <label htmlFor="alias-targets">Targets</label>
            <textarea id="alias-targets" name="targets" rows={3} required placeholder={'azure/gpt-4o\nlab/llama3.1'}
              aria-describedby="alias-targets-hint" />
            <small id="alias-targets-hint" className="hint">One provider/model per line, tried in order.</small>
            {targetErrors.map((e) => <small key={e} className="field-error">{e}</small>)}
            {problem?.field?.startsWith('route.targets') && <small className="field-error">{problem.message}</small>}
          </div>
          <TextField label="Timeout per attempt (ms)" name="timeoutMs" type="number" min={0} field="route.timeout_ms" problem={problem} />
          <TextField label="Retries per target" name="maxRetries" type="number" min={0} field="route.max_retries" problem={problem} />
        </div>
        <CheckField label="On-premises targets only" name="privateOnly" />
        <Problem problem={problem} fields={['route']} />
        <button type="submit" className="primary" disabled={save.isPending}>Save alias</button>
      </form>
    </>
  );
}
