// The audit trail: a filterable table of events with a detail drawer, chain verification,
// export, and the retention period (changed by owners only).
import { useInfiniteQuery, useMutation } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { audit } from '../../api/clients';
import { problemOf } from '../../api/errors';
import { formatCount, formatTime } from '../../api/format';
import { Dialog } from '../../components/Dialog';
import { CheckField, Problem, SelectField, TextField } from '../../components/forms';
import { Empty, Loading, PageHeader, download } from '../../components/misc';
import { AuditOutcome, ExportFormat, type AuditEvent } from '../../gen/codexcontinue/v1/audit_pb.js';
import type { Actor } from '../../gen/codexcontinue/v1/common_pb.js';
import { EMPTY_FILTER, toFilter, type FilterForm } from './filter';
import { CheckpointKey, Retention, VerifyChain } from './ChainPanels';

const OUTCOMES: Record<number, string> = {
  [AuditOutcome.SUCCESS]: 'success',
  [AuditOutcome.DENIED]: 'denied',
  [AuditOutcome.FAILURE]: 'failure',
};

/** Who acted; ids cut to their first 8 characters when `short` (the drawer shows them whole). */
export function actorText(actor: Actor | undefined, short = false): string {
  const id = (value: string) => (short ? value.slice(0, 8) : value);
  switch (actor?.kind.case) {
    case 'userId': return `user ${id(actor.kind.value)}`;
    case 'apiKeyId': return `key ${id(actor.kind.value)}`;
    case 'system': return `system ${actor.kind.value}`;
    default: return '—';
  }
}

export default function AuditPage() {
  const [form, setForm] = useState<FilterForm>(EMPTY_FILTER);
  const [applied, setApplied] = useState<FilterForm>(EMPTY_FILTER);
  const [selected, setSelected] = useState<AuditEvent>();
  const events = useInfiniteQuery({
    queryKey: ['audit', applied],
    initialPageParam: '',
    queryFn: ({ pageParam }) => audit.listAuditEvents({ filter: toFilter(applied), pageSize: 50, pageToken: pageParam }),
    getNextPageParam: (last) => last.nextPageToken || undefined,
  });
  const exporter = useMutation({
    mutationFn: async (format: ExportFormat) => {
      const rows: string[] = [];
      for await (const part of audit.exportAuditEvents({ filter: toFilter(applied), format })) rows.push(part.row);
      const csv = format === ExportFormat.CSV;
      download(`audit-${new Date().toISOString().slice(0, 10)}.${csv ? 'csv' : 'jsonl'}`, rows.join(''),
        csv ? 'text/csv' : 'application/x-ndjson');
      return rows.length;
    },
  });
  const set = (key: keyof FilterForm) => (e: { target: { value: string; checked?: boolean } }) =>
    setForm({ ...form, [key]: key === 'phiOnly' ? Boolean(e.target.checked) : e.target.value });
  const apply = (event: FormEvent) => { event.preventDefault(); setApplied(form); };
  const problem = events.error ? problemOf(events.error) : undefined;
  const list = events.data?.pages.flatMap((page) => page.events) ?? [];

  return (
    <section>
      <PageHeader title="Audit trail" />
      <div className="panels">
        <VerifyChain />
        <Retention />
        <CheckpointKey />
      </div>

      <form className="filters card" onSubmit={apply} aria-labelledby="filter-title">
        <h2 id="filter-title">Filter</h2>
        <div className="grid">
          <TextField label="Action" name="action" value={form.action} onChange={set('action')} field="filter.action" problem={problem} placeholder="/codexcontinue.v1.AuthService/CreateApiKey" />
          <SelectField label="Outcome" name="outcome" value={form.outcome} onChange={set('outcome')} field="filter.outcome" problem={problem}>
            <option value="">Any</option>
            {Object.entries(OUTCOMES).map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </SelectField>
          <TextField label="Actor" name="actor" value={form.actor} onChange={set('actor')} field="filter.actor" problem={problem} hint="A user id, key:<key id> or system:<job>." />
          <TextField label="Resource type" name="resourceType" value={form.resourceType} onChange={set('resourceType')} field="filter.resource_type" problem={problem} />
          <TextField label="Resource id" name="resourceId" value={form.resourceId} onChange={set('resourceId')} field="filter.resource_id" problem={problem} />
          <TextField label="From" name="from" type="date" value={form.from} onChange={set('from')} field="filter.time_range" problem={problem} />
          <TextField label="To" name="to" type="date" value={form.to} onChange={set('to')} field="filter.time_range" problem={problem} />
          <CheckField label="Only events touching PHI" checked={form.phiOnly} onChange={set('phiOnly')} />
        </div>
        <div className="row">
          <button type="submit" className="primary">Apply</button>
          <button type="button" onClick={() => { setForm(EMPTY_FILTER); setApplied(EMPTY_FILTER); }}>Clear</button>
          <span className="spacer" />
          <button type="button" onClick={() => exporter.mutate(ExportFormat.JSONL)} disabled={exporter.isPending}>Export JSONL</button>
          <button type="button" onClick={() => exporter.mutate(ExportFormat.CSV)} disabled={exporter.isPending}>Export CSV</button>
        </div>
        {exporter.isSuccess && <p role="status" className="muted">Exported {formatCount(exporter.data)} events.</p>}
        <Problem problem={exporter.error ? problemOf(exporter.error) : undefined} />
      </form>

      <Problem problem={problem} fields={['filter']} />
      {events.isPending && <Loading what="events" />}
      {events.isSuccess && list.length === 0 && <Empty>No events match.</Empty>}
      {list.length > 0 && (
        <table className="events">
          <caption className="visually-hidden">Audit events, newest first</caption>
          <thead>
            <tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Resource</th><th scope="col">Outcome</th><th scope="col">PHI</th></tr>
          </thead>
          <tbody>
            {list.map((event) => (
              <tr key={event.id}>
                <td><button type="button" className="link" onClick={() => setSelected(event)} aria-label={`Details of event ${String(event.seq)}`}>{String(event.seq)}</button></td>
                <td className="nowrap">{formatTime(event.time)}</td>
                <td className="mono nowrap" title={actorText(event.actor)}>{actorText(event.actor, true)}</td>
                <td className="mono">{event.action}</td>
                <td className="mono">{[event.resourceType, event.resourceId].filter(Boolean).join(' ')}</td>
                <td><span className={`badge ${OUTCOMES[event.outcome] ?? ''}`}>{OUTCOMES[event.outcome] ?? 'unknown'}</span></td>
                <td>{event.phi ? 'yes' : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {events.hasNextPage && (
        <button type="button" onClick={() => void events.fetchNextPage()} disabled={events.isFetchingNextPage}>Load more</button>
      )}

      <Dialog title={selected ? `Event ${String(selected.seq)}` : 'Event'} open={Boolean(selected)} onClose={() => setSelected(undefined)} drawer>
        {selected && (
          <>
            <dl className="details">
              <dt>Time</dt><dd>{formatTime(selected.time)}</dd>
              <dt>Actor</dt><dd className="mono">{actorText(selected.actor)}</dd>
              <dt>Action</dt><dd className="mono">{selected.action}</dd>
              <dt>Resource</dt><dd className="mono">{selected.resourceType} {selected.resourceId}</dd>
              <dt>Outcome</dt><dd>{OUTCOMES[selected.outcome] ?? 'unknown'} (status {selected.statusCode})</dd>
              <dt>Request id</dt><dd className="mono">{selected.requestId}</dd>
              <dt>Client</dt><dd>{selected.clientAddress} {selected.userAgent}</dd>
              <dt>PHI</dt><dd>{selected.phi ? 'yes' : 'no'}</dd>
              <dt>Hash</dt><dd className="mono wrap">{selected.hash}</dd>
            </dl>
            <h3>Details</h3>
            <pre className="json">{JSON.stringify(selected.details ?? {}, null, 2)}</pre>
          </>
        )}
      </Dialog>
    </section>
  );
}
