// My memory: what the assistant remembers about the caller; add a fact, search, forget.
import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { memory } from '../api/clients';
import { problemOf } from '../api/errors';
import { formatTime } from '../api/format';
import { Dialog } from '../components/Dialog';
import { Problem, TextField } from '../components/forms';
import { Empty, Loading, PageHeader } from '../components/misc';
import { MemoryKind } from '../gen/codexcontinue/v1/memory_pb.js';
import { allows } from '../session/access';
import { useRoles } from '../session/session';

const KINDS: Record<number, string> = {
  [MemoryKind.MESSAGE]: 'message', [MemoryKind.SUMMARY]: 'summary', [MemoryKind.EPISODIC]: 'fact',
};

export default function MemoryPage() {
  const queries = useQueryClient();
  const canWrite = allows(useRoles(), 'chat.write');
  const [forgetAll, setForgetAll] = useState(false);
  const items = useInfiniteQuery({
    queryKey: ['memories'],
    initialPageParam: '',
    queryFn: ({ pageParam }) => memory.listMemories({ pageSize: 50, pageToken: pageParam }),
    getNextPageParam: (last) => last.nextPageToken || undefined,
  });
  const recall = useMutation({ mutationFn: (query: string) => memory.recall({ query, topK: 10 }) });
  const refresh = () => void queries.invalidateQueries({ queryKey: ['memories'] });
  const remember = useMutation({ mutationFn: (content: string) => memory.remember({ content }), onSuccess: refresh });
  const forget = useMutation({
    mutationFn: (target: { memoryId: string } | 'everything') => memory.forget({
      target: target === 'everything' ? { case: 'everything', value: true } : { case: 'memoryId', value: target.memoryId },
    }),
    onSuccess: () => { setForgetAll(false); refresh(); },
  });
  const rememberProblem = remember.error ? problemOf(remember.error) : undefined;
  const onRemember = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    remember.mutate(String(new FormData(form).get('content') ?? ''), { onSuccess: () => form.reset() });
  };
  const onRecall = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    recall.mutate(String(new FormData(event.currentTarget).get('query') ?? ''));
  };
  const list = items.data?.pages.flatMap((p) => p.items) ?? [];

  return (
    <section>
      <PageHeader title="My memory">
        {canWrite && <button type="button" className="danger" onClick={() => setForgetAll(true)}>Forget everything</button>}
      </PageHeader>
      <div className="panels">
        {canWrite && (
          <form className="card" onSubmit={onRemember} aria-labelledby="remember-title">
            <h2 id="remember-title">Remember a fact</h2>
            <TextField label="Fact or preference" name="content" required maxLength={2000} field="content" problem={rememberProblem} />
            <Problem problem={rememberProblem} fields={['content']} />
            <button type="submit" disabled={remember.isPending}>Remember</button>
          </form>
        )}
        <form className="card" onSubmit={onRecall} aria-labelledby="recall-title">
          <h2 id="recall-title">Search</h2>
          <TextField label="What to look for" name="query" required field="query" problem={recall.error ? problemOf(recall.error) : undefined} />
          <button type="submit" disabled={recall.isPending}>Search</button>
          {recall.data && (
            <ol className="recall">
              {recall.data.items.map((scored) => (
                <li key={scored.item?.id}>{scored.item?.content} <small className="muted">score {scored.score.toFixed(2)}</small></li>
              ))}
              {recall.data.items.length === 0 && <li className="muted">Nothing found.</li>}
            </ol>
          )}
        </form>
      </div>
      <Problem problem={forget.error ? problemOf(forget.error) : undefined} />
      <Problem problem={items.error ? problemOf(items.error) : undefined} />
      {items.isPending && <Loading what="memories" />}
      {items.isSuccess && list.length === 0 && <Empty>Nothing remembered yet.</Empty>}
      {list.length > 0 && (
        <table>
          <caption className="visually-hidden">Memories, newest first</caption>
          <thead><tr><th scope="col">Memory</th><th scope="col">Kind</th><th scope="col">Id</th><th scope="col">Saved</th>{canWrite && <th scope="col"><span className="visually-hidden">Actions</span></th>}</tr></thead>
          <tbody>
            {list.map((item) => (
              <tr key={item.id}>
                <td>{item.content}</td>
                <td>{KINDS[item.kind] ?? 'other'}</td>
                <td className="mono">{item.id.slice(0, 8)}</td>
                <td>{formatTime(item.createTime)}</td>
                {canWrite && <td><button type="button" onClick={() => forget.mutate({ memoryId: item.id })} aria-label={`Forget memory ${item.id.slice(0, 8)}`}>Forget</button></td>}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {items.hasNextPage && <button type="button" onClick={() => void items.fetchNextPage()}>Load more</button>}
      <Dialog title="Forget everything?" open={forgetAll} onClose={() => setForgetAll(false)}>
        <p>Every memory the assistant keeps about you is deleted. This cannot be undone.</p>
        <div className="row">
          <button type="button" className="danger" onClick={() => forget.mutate('everything')}>Forget everything</button>
          <button type="button" onClick={() => setForgetAll(false)}>Cancel</button>
        </div>
      </Dialog>
    </section>
  );
}
