// Chain verification, the retention period and the checkpoint public key, beside the audit
// table.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { audit } from '../../api/clients';
import { problemOf } from '../../api/errors';
import { formatCount } from '../../api/format';
import { CheckField, Problem, TextField } from '../../components/forms';
import { allows } from '../../session/access';
import { useRoles } from '../../session/session';

export function VerifyChain() {
  const [since, setSince] = useState(false);
  const verify = useMutation({ mutationFn: () => audit.verifyChain({ sinceCheckpoint: since }) });
  const result = verify.data;
  return (
    <section className="card" aria-labelledby="verify-title">
      <h2 id="verify-title">Verify the chain</h2>
      <CheckField label="From the newest signed checkpoint" checked={since} onChange={(e) => setSince(e.target.checked)} />
      <button type="button" className="primary" onClick={() => verify.mutate()} disabled={verify.isPending}>
        {verify.isPending ? 'Verifying…' : 'Verify chain'}
      </button>
      <div role="status" aria-live="polite">
        {result && result.intact && (
          <p className="ok" data-testid="verify-result">
            Intact: {formatCount(result.eventsChecked)} events and {formatCount(result.checkpointsChecked)} checkpoints checked.
          </p>
        )}
        {result && !result.intact && (
          <p className="bad" data-testid="verify-result">
            Broken at event {String(result.firstBrokenSeq)}: {result.problem} ({formatCount(result.eventsChecked)} events checked).
          </p>
        )}
      </div>
      <Problem problem={verify.error ? problemOf(verify.error) : undefined} />
    </section>
  );
}

export function Retention() {
  const queries = useQueryClient();
  const owner = allows(useRoles(), 'audit.retention');
  const policy = useQuery({ queryKey: ['retention'], queryFn: () => audit.getRetentionPolicy({}) });
  const save = useMutation({
    mutationFn: (days: number) => audit.setRetentionPolicy({ retentionDays: days }),
    onSuccess: () => void queries.invalidateQueries({ queryKey: ['retention'] }),
  });
  const problem = save.error ? problemOf(save.error) : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    save.mutate(Number(new FormData(event.currentTarget).get('days')));
  };
  return (
    <section className="card" aria-labelledby="retention-title">
      <h2 id="retention-title">Retention</h2>
      {policy.data && <p>Events are kept {formatCount(policy.data.retentionDays)} days.</p>}
      <Problem problem={policy.error ? problemOf(policy.error) : undefined} />
      {owner && policy.data && (
        <form onSubmit={submit}>
          <TextField label="Keep events (days)" name="days" type="number" min={1} required
            defaultValue={policy.data.retentionDays} field="retention_days" problem={problem} />
          <Problem problem={problem} fields={['retention_days']} />
          <button type="submit" disabled={save.isPending}>Save retention</button>
          {save.isSuccess && <span role="status" className="muted"> Saved.</span>}
        </form>
      )}
    </section>
  );
}

export function CheckpointKey() {
  const key = useQuery({ queryKey: ['checkpoint-key'], queryFn: () => audit.getCheckpointPublicKey({}) });
  return (
    <section className="card" aria-labelledby="key-title">
      <h2 id="key-title">Checkpoint public key</h2>
      <p className="muted">Checkpoints are signed with this Ed25519 key; auditors check exported checkpoints with it.</p>
      {key.data && (
        <dl>
          <dt>Key id</dt>
          <dd><code data-testid="checkpoint-key-id">{key.data.keyId}</code></dd>
          <dt>Public key (base64)</dt>
          <dd><code data-testid="checkpoint-public-key">{key.data.publicKey}</code></dd>
        </dl>
      )}
      <Problem problem={key.error ? problemOf(key.error) : undefined} />
    </section>
  );
}
