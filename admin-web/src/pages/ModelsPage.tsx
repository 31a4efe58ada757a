// Models the server runs itself (libtorch): their state and device; admins load and
// unload the tenant's own, platform operators the shared ones. (Uploading a model is a
// client stream, which browsers cannot send over gRPC-Web.)
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { models } from '../api/clients';
import { problemOf } from '../api/errors';
import { formatCount } from '../api/format';
import { Empty, Loading, PageHeader } from '../components/misc';
import { Problem } from '../components/forms';
import { Device, ModelKind, ModelState, type Model } from '../gen/codexcontinue/v1/models_pb.js';
import { allows } from '../session/access';
import { useRoles } from '../session/session';

const KINDS: Record<number, string> = {
  [ModelKind.EMBEDDING]: 'embedding', [ModelKind.CLASSIFIER]: 'classifier',
  [ModelKind.CAUSAL_LM]: 'language model', [ModelKind.TORCHSCRIPT]: 'TorchScript',
};
const STATES: Record<number, string> = {
  [ModelState.REGISTERED]: 'registered', [ModelState.LOADING]: 'loading', [ModelState.READY]: 'ready',
  [ModelState.UNLOADING]: 'unloading', [ModelState.FAILED]: 'failed',
};
const DEVICES: Record<number, string> = { [Device.AUTO]: 'auto', [Device.CPU]: 'CPU', [Device.CUDA]: 'CUDA' };

export default function ModelsPage() {
  const queries = useQueryClient();
  const roles = useRoles();
  const canManage = allows(roles, 'models.manage');
  const list = useQuery({ queryKey: ['models'], queryFn: () => models.listModels({ pageSize: 200 }) });
  const change = useMutation({
    mutationFn: (action: () => Promise<unknown>) => action(),
    onSuccess: () => void queries.invalidateQueries({ queryKey: ['models'] }),
  });
  const mayChange = (model: Model) => canManage && (model.tenantPrivate || roles.includes('platform-admin'));
  const items = list.data?.models ?? [];
  return (
    <section>
      <PageHeader title="Models" />
      {list.isPending && <Loading what="models" />}
      <Problem problem={list.error ? problemOf(list.error) : undefined} />
      <Problem problem={change.error ? problemOf(change.error) : undefined} />
      {list.isSuccess && items.length === 0 && <Empty>This server runs no models of its own.</Empty>}
      {items.length > 0 && (
        <table>
          <caption className="visually-hidden">Models</caption>
          <thead>
            <tr>
              <th scope="col">Model</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Device</th>
              <th scope="col">Size</th><th scope="col">Owner</th><th scope="col"><span className="visually-hidden">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {items.map((model) => (
              <tr key={model.id}>
                <td>{model.manifest?.name} <small className="muted">{model.manifest?.version}</small></td>
                <td>{KINDS[model.manifest?.kind ?? 0] ?? 'unknown'}</td>
                <td>{STATES[model.state] ?? 'unknown'}{model.error && <><br /><small className="bad">{model.error}</small></>}</td>
                <td>{DEVICES[model.device] ?? '—'}</td>
                <td>{formatCount(Math.round(Number(model.sizeBytes) / 1_048_576))} MiB</td>
                <td>{model.tenantPrivate ? 'this tenant' : 'platform'}</td>
                <td className="actions">
                  {mayChange(model) && (model.state === ModelState.READY
                    ? <button type="button" onClick={() => change.mutate(() => models.unloadModel({ model: model.id }))}>Unload</button>
                    : <button type="button" onClick={() => change.mutate(() => models.loadModel({ model: model.id }))}>Load</button>)}
                  {canManage && model.tenantPrivate && (
                    <button type="button" className="danger" onClick={() => change.mutate(() => models.deleteModel({ model: model.id }))}
                      aria-label={`Delete model ${model.manifest?.name ?? model.id}`}>Delete</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
