// Chat: the caller's conversations, one conversation's messages, and a composer whose
// replies stream in (with the tools the assistant calls and the memories it used).
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback } from 'react';
import { NavLink, useNavigate, useParams } from 'react-router';
import { chat } from '../../api/clients';
import { problemOf } from '../../api/errors';
import { Problem } from '../../components/forms';
import { Loading } from '../../components/misc';
import { useReply } from './useReply';
import { ConversationView } from './ConversationView';
import { NewConversation } from './NewConversation';

export default function ChatPage() {
  const id = useParams()['*'] || undefined;
  const queries = useQueryClient();
  const navigate = useNavigate();
  const conversations = useQuery({
    queryKey: ['conversations'],
    queryFn: () => chat.listConversations({ pageSize: 100 }),
  });
  const onDone = useCallback((conversationId: string) => {
    void queries.invalidateQueries({ queryKey: ['conversations'] });
    void queries.invalidateQueries({ queryKey: ['messages', conversationId] });
    void queries.invalidateQueries({ queryKey: ['conversation', conversationId] });
  }, [queries]);
  const reply = useReply(onDone);

  return (
    <div className="chat">
      <aside className="conversations" aria-labelledby="conversations-title">
        <h1 id="conversations-title" className="h2">Conversations</h1>
        <button type="button" className="primary" onClick={() => { reply.clear(); navigate('/chat'); }}>New conversation</button>
        {conversations.isPending && <Loading what="conversations" />}
        <Problem problem={conversations.error ? problemOf(conversations.error) : undefined} />
        <ul>
          {conversations.data?.conversations.map((c) => (
            <li key={c.id}>
              <NavLink to={`/chat/${c.id}`} onClick={() => { if (!reply.current?.running) reply.clear(); }}>
                <span className="title">{c.title || 'Untitled'}</span>
                <span className="meta">{c.profile} · {String(c.messageCount)} messages</span>
              </NavLink>
            </li>
          ))}
        </ul>
      </aside>
      <section className="conversation">
        {id ? <ConversationView key={id} id={id} reply={reply} /> : <NewConversation reply={reply} />}
      </section>
    </div>
  );
}
