// One conversation: its messages, the reply streaming in, rename, delete, regenerate.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { chat } from '../../api/clients';
import { problemOf } from '../../api/errors';
import { Problem, TextField } from '../../components/forms';
import { Dialog } from '../../components/Dialog';
import { Loading } from '../../components/misc';
import { MessageRole } from '../../gen/codexcontinue/v1/chat_pb.js';
import { allows } from '../../session/access';
import { useRoles } from '../../session/session';
import { Composer } from './Composer';
import { MessageItem, ReplyFooter, ToolCalls } from './Messages';
import type { ReplyRunner } from './useReply';

export function ConversationView({ id, reply }: { id: string; reply: ReplyRunner }) {
  const queries = useQueryClient();
  const navigate = useNavigate();
  const canWrite = allows(useRoles(), 'chat.write');
  const [model, setModel] = useState('');
  const [renaming, setRenaming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const conversation = useQuery({ queryKey: ['conversation', id], queryFn: () => chat.getConversation({ conversationId: id }) });
  const messages = useQuery({ queryKey: ['messages', id], queryFn: () => chat.listMessages({ conversationId: id, pageSize: 500 }) });
  const current = reply.current?.conversationId === id ? reply.current : undefined;
  const running = Boolean(current?.running);
  const list = messages.data?.messages ?? [];
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => { end.current?.scrollIntoView?.({ block: 'end' }); }, [list.length, current?.turn.text]);

  // Until the streamed reply is among the stored messages, it is shown from the stream and
  // the stored messages it follows or replaces are left out. A stream refused before it
  // started shows the user's words (for a new message) and the refusal, nothing else.
  const started = running || Boolean(current?.turn.replyMessageId);
  const showStream = current !== undefined && (started || Boolean(current.userText))
    && !list.some((m) => m.id === current.turn.replyMessageId);
  const streamedIds = new Set([current?.turn.userMessageId, current?.turn.replyMessageId].filter(Boolean));
  let shown = showStream ? list.filter((m) => !streamedIds.has(m.id)) : list;
  if (showStream && started && !current.userText && shown.at(-1)?.role === MessageRole.ASSISTANT) shown = shown.slice(0, -1);
  const lastIsReply = list.at(-1)?.role === MessageRole.ASSISTANT;

  const rename = useMutation({
    mutationFn: (title: string) => chat.renameConversation({ conversationId: id, title }),
    onSuccess: () => {
      setRenaming(false);
      void queries.invalidateQueries({ queryKey: ['conversation', id] });
      void queries.invalidateQueries({ queryKey: ['conversations'] });
    },
  });
  const remove = useMutation({
    mutationFn: () => chat.deleteConversation({ conversationId: id }),
    onSuccess: () => {
      void queries.invalidateQueries({ queryKey: ['conversations'] });
      navigate('/chat');
    },
  });
  const submitRename = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    rename.mutate(String(new FormData(event.currentTarget).get('title') ?? ''));
  };

  const c = conversation.data?.conversation;
  return (
    <>
      <header className="conversation-head">
        <h2>{c?.title || 'Untitled conversation'}</h2>
        {c && <span className="meta">Profile {c.profile || 'general'}{c.model ? ` · model ${c.model}` : ''}</span>}
        {canWrite && (
          <span className="actions">
            <button type="button" onClick={() => setRenaming(true)}>Rename</button>
            <button type="button" className="danger" onClick={() => setDeleting(true)}>Delete</button>
          </span>
        )}
      </header>
      <Problem problem={conversation.error ? problemOf(conversation.error) : undefined} />
      {messages.isPending && <Loading what="messages" />}
      <ol className="messages" aria-label="Messages">
        {shown.map((m) => <MessageItem key={m.id} message={m} memoryIds={reply.memoriesOf(m.id)} />)}
        {showStream && current.userText && (
          <li className="message user"><span className="who">You</span><div className="text">{current.userText}</div></li>
        )}
        {showStream && started && (
          <li className="message assistant streaming" aria-busy={running}>
            <span className="who">Assistant</span>
            <ToolCalls calls={current.turn.toolCalls} />
            <div className="text">{current.turn.text}{running && <span className="cursor" aria-hidden="true">▍</span>}</div>
            {current.turn.done && (
              <ReplyFooter model={current.turn.modelUsed} usage={current.turn.usage} finish={current.turn.finishReason} memoryIds={current.turn.memoryIds} />
            )}
          </li>
        )}
      </ol>
      <div ref={end} />
      <p className="visually-hidden" role="status">{running ? 'The assistant is replying.' : current?.turn.done ? 'Reply complete.' : ''}</p>
      <Problem problem={current?.problem} />
      {canWrite && lastIsReply && !running && (
        <button type="button" className="regenerate" onClick={() => void reply.regenerate(id, model)}>Regenerate reply</button>
      )}
      <Composer
        running={running}
        disabled={!canWrite}
        model={model}
        onModel={setModel}
        onSend={(text) => void reply.send(id, text, model)}
        onCancel={() => void reply.cancel()}
      />
      <Dialog title="Rename conversation" open={renaming} onClose={() => setRenaming(false)}>
        <form onSubmit={submitRename}>
          <TextField label="Title" name="title" field="title" problem={rename.error ? problemOf(rename.error) : undefined}
            defaultValue={c?.title} maxLength={200} required autoFocus />
          <Problem problem={rename.error ? problemOf(rename.error) : undefined} fields={['title']} />
          <button type="submit" className="primary" disabled={rename.isPending}>Save</button>
        </form>
      </Dialog>
      <Dialog title="Delete conversation?" open={deleting} onClose={() => setDeleting(false)}>
        <p>This deletes the conversation, its messages and the memories made from it. It cannot be undone.</p>
        <Problem problem={remove.error ? problemOf(remove.error) : undefined} />
        <div className="row">
          <button type="button" className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>Delete</button>
          <button type="button" onClick={() => setDeleting(false)}>Keep it</button>
        </div>
      </Dialog>
    </>
  );
}
