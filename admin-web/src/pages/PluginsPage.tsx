// Plugins: register one (gRPC, MCP or a WebAssembly component), see its tools and
// manifest, enable, approve a changed manifest, try a tool, unregister.
import type { JsonObject } from '@bufbuild/protobuf';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { plugins } from '../api/clients';
import { problemOf, type ApiProblem } from '../api/errors';
import { formatTime } from '../api/format';
import { Dialog } from '../components/Dialog';
import { CheckField, Problem, SelectField, TextField } from '../components/forms';
import { Empty, Loading, PageHeader } from '../components/misc';
import { PluginTransport, type Plugin } from '../gen/codexcontinue/v1/plugins_pb.js';
import { allows } from '../session/access';
import { useRoles } from '../session/session';

const TRANSPORTS: Record<number, string> = {
  [PluginTransport.GRPC]: 'gRPC',
  [PluginTransport.MCP]: 'MCP',
  [PluginTransport.WASM]: 'WebAssembly',
};

export default function PluginsPage() {
  const queries = useQueryClient();
  const roles = useRoles();
  const canManage = allows(roles, 'plugins.manage');
  const canInvoke = allows(roles, 'chat.write');
  const [trying, setTrying] = useState<Plugin>();
  const list = useQuery({ queryKey: ['plugins'], queryFn: () => plugins.listPlugins({ pageSize: 200 }) });
  const refresh = () => void queries.invalidateQueries({ queryKey: ['plugins'] });
  const change = useMutation({ mutationFn: (action: () => Promise<unknown>) => action(), onSuccess: refresh });
  const items = list.data?.plugins ?? [];

  return (
    <section>
      <PageHeader title="Plugins" />
      {canManage && <RegisterPlugin onDone={refresh} />}
      {list.isPending && <Loading what="plugins" />}
      <Problem problem={list.error ? problemOf(list.error) : undefined} />
      <Problem problem={change.error ? problemOf(change.error) : undefined} />
      {list.isSuccess && items.length === 0 && <Empty>No plugins registered.</Empty>}
      {items.map((plugin) => (
        <article key={plugin.id} className="card" aria-labelledby={`plugin-${plugin.id}`}>
          <div className="page-head">
            <h2 id={`plugin-${plugin.id}`}>{plugin.name} <small className="muted">{plugin.version}</small></h2>
            <span className={`badge ${plugin.enabled ? 'success' : 'denied'}`}>{plugin.enabled ? 'enabled' : 'disabled'}</span>
            <span className="page-actions actions">
              {canInvoke && plugin.enabled && <button type="button" onClick={() => setTrying(plugin)}>Try a tool</button>}
              {canManage && (
                <>
                  <button type="button" onClick={() => change.mutate(() => plugins.updatePlugin({ pluginId: plugin.id, enabled: !plugin.enabled }))}>
                    {plugin.enabled ? 'Disable' : 'Enable'}
                  </button>
                  <button type="button" onClick={() => change.mutate(() => plugins.refreshPlugin({ pluginId: plugin.id }))}>Read manifest</button>
                  <button type="button" className="danger" onClick={() => change.mutate(() => plugins.unregisterPlugin({ pluginId: plugin.id }))}
                    aria-label={`Unregister ${plugin.name}`}>Unregister</button>
                </>
              )}
            </span>
          </div>
          <p>{plugin.description}</p>
          <dl className="details">
            <dt>Transport</dt><dd>{TRANSPORTS[plugin.transport] ?? 'gRPC'}{plugin.onPremises ? ', on premises' : ''}</dd>
            <dt>Endpoint</dt><dd className="mono wrap">{plugin.endpoint || '(uploaded component)'}</dd>
            <dt>Manifest</dt><dd className="mono wrap">{plugin.manifestSha256} (read {formatTime(plugin.refreshTime)})</dd>
            <dt>Timeout</dt><dd>{plugin.timeoutMs} ms</dd>
          </dl>
          {plugin.pendingManifestSha256 && (
            <p className="notice">
              The plugin changed its manifest (<code>{plugin.pendingManifestSha256.slice(0, 16)}…</code>); it stays disabled until approved.
              {canManage && (
                <button type="button" onClick={() => change.mutate(() => plugins.approvePlugin({
                  pluginId: plugin.id, manifestSha256: plugin.pendingManifestSha256,
                }))}>Approve the new manifest</button>
              )}
            </p>
          )}
          <h3>Tools</h3>
          <ul>{plugin.tools.map((tool) => <li key={tool.name}><code>{tool.name}</code>: {tool.description}</li>)}</ul>
        </article>
      ))}
      <Dialog title={trying ? `Try ${trying.name}` : 'Try a tool'} open={Boolean(trying)} onClose={() => setTrying(undefined)}>
        {trying && <TryTool plugin={trying} />}
      </Dialog>
    </section>
  );
}

function RegisterPlugin({ onDone }: { onDone(): void }) {
  const register = useMutation({
    mutationFn: async (form: FormData) => {
      const file = form.get('component');
      const component = file instanceof File && file.size > 0 ? new Uint8Array(await file.arrayBuffer()) : new Uint8Array();
      return plugins.registerPlugin({
        transport: Number(form.get('transport')),
        endpoint: String(form.get('endpoint') ?? '').trim(),
        name: String(form.get('name') ?? '').trim(),
        credential: String(form.get('credential') ?? ''),
        timeoutMs: Number(form.get('timeoutMs') || 0),
        onPremises: form.get('onPremises') === 'on',
        component,
      });
    },
    onSuccess: onDone,
  });
  const problem = register.error ? problemOf(register.error) : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    register.mutate(new FormData(form), { onSuccess: () => form.reset() });
  };
  return (
    <form className="card" onSubmit={submit} aria-labelledby="register-title">
      <h2 id="register-title">Register a plugin</h2>
      <div className="grid">
        <SelectField label="Transport" name="transport" defaultValue={String(PluginTransport.GRPC)} field="transport" problem={problem}>
          {Object.entries(TRANSPORTS).map(([k, label]) => <option key={k} value={k}>{label}</option>)}
        </SelectField>
        <TextField label="Endpoint" name="endpoint" field="endpoint" problem={problem}
          hint="https://… for gRPC and MCP; builtin:<name> for a shipped component." />
        <TextField label="Name (optional)" name="name" field="name" problem={problem} hint="Default: the manifest’s name." />
        <TextField label="Credential (optional)" name="credential" type="password" autoComplete="off" field="credential" problem={problem} />
        <TextField label="Timeout (ms)" name="timeoutMs" type="number" min={1} max={60000} field="timeout_ms" problem={problem} />
        <TextField label="Component (.wasm, optional)" name="component" type="file" accept=".wasm,application/wasm" field="component" problem={problem} />
      </div>
      <CheckField label="Runs on our premises" name="onPremises" />
      <Problem problem={problem} fields={['transport', 'endpoint', 'name', 'credential', 'timeout_ms', 'component']} />
      <button type="submit" className="primary" disabled={register.isPending}>Register</button>
    </form>
  );
}

function TryTool({ plugin }: { plugin: Plugin }) {
  const [tool, setTool] = useState(plugin.tools[0]?.name ?? '');
  const [args, setArgs] = useState('{}');
  const [parseError, setParseError] = useState<string>();
  const invoke = useMutation({
    mutationFn: (argumentsObject: JsonObject) => plugins.invokePlugin({ pluginId: plugin.id, tool, arguments: argumentsObject }),
  });
  const problem: ApiProblem | undefined = invoke.error ? problemOf(invoke.error) : undefined;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    try {
      const parsed: unknown = JSON.parse(args);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('write a JSON object');
      setParseError(undefined);
      invoke.mutate(parsed as JsonObject);
    } catch (error) {
      setParseError(error instanceof Error ? error.message : String(error));
    }
  };
  const schema = plugin.tools.find((t) => t.name === tool)?.parametersSchema;
  return (
    <form onSubmit={submit}>
      <SelectField label="Tool" name="tool" value={tool} onChange={(e) => setTool(e.target.value)}>
        {plugin.tools.map((t) => <option key={t.name} value={t.name}>{t.name}</option>)}
      </SelectField>
      {schema && <details><summary>Arguments schema</summary><pre className="json">{JSON.stringify(schema, null, 2)}</pre></details>}
      <div className="field">
        <label htmlFor="tool-arguments">Arguments (JSON)</label>
        <textarea id="tool-arguments" rows={5} value={args} onChange={(e) => setArgs(e.target.value)}
          aria-invalid={parseError || problem?.field === 'arguments' ? true : undefined} />
        {parseError && <small className="field-error">{parseError}</small>}
        {problem?.field === 'arguments' && <small className="field-error">{problem.message}</small>}
      </div>
      <Problem problem={problem} fields={['arguments']} />
      <button type="submit" className="primary" disabled={invoke.isPending}>Invoke</button>
      {invoke.data && (
        <div role="status">
          <h3>{invoke.data.isError ? 'The tool reported an error' : 'Result'} <small className="muted">in {String(invoke.data.latencyMs)} ms</small></h3>
          <pre className="json" data-testid="tool-result">{JSON.stringify(invoke.data.result ?? {}, null, 2)}</pre>
        </div>
      )}
    </form>
  );
}
