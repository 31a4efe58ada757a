// How messages and the reply being streamed look.
import { FinishReason, MessageRole, type Message, type ToolCallFinished } from '../../gen/codexcontinue/v1/chat_pb.js';
import type { Usage } from '../../gen/codexcontinue/v1/common_pb.js';
import type { ToolCallView } from '../../chat/turn';
import { formatCount } from '../../api/format';

const FINISH: Partial<Record<FinishReason, string>> = {
  [FinishReason.LENGTH]: 'stopped at the token limit',
  [FinishReason.CONTENT_FILTER]: 'stopped by the provider’s content filter',
  [FinishReason.CANCELLED]: 'cancelled',
};

export function ToolCalls({ calls }: { calls: readonly (ToolCallView | ToolCallFinished)[] }) {
  if (calls.length === 0) return null;
  return (
    <ul className="tool-calls" aria-label="Tool calls">
      {calls.map((call) => {
        const finished = 'finished' in call ? call.finished : (call as ToolCallFinished);
        const outcome = finished?.outcome;
        return (
          <li key={call.callId} className={outcome ? `tool ${outcome === 'ok' ? 'ok' : 'bad'}` : 'tool running'}>
            <code>{call.plugin ? `${call.plugin}.${call.tool}` : call.tool}</code>{' '}
            {outcome ? <span>{outcome} in {String(finished?.latencyMs ?? 0)} ms</span> : <span>running…</span>}
          </li>
        );
      })}
    </ul>
  );
}

export function ReplyFooter({ model, usage, finish, memoryIds }: {
  model?: string; usage?: Usage; finish?: FinishReason; memoryIds?: readonly string[];
}) {
  const parts = [model, usage ? `${formatCount(usage.totalTokens)} tokens` : undefined, finish ? FINISH[finish] : undefined]
    .filter(Boolean);
  return (
    <footer className="reply-meta">
      {parts.join(' · ')}
      {memoryIds && memoryIds.length > 0 && (
        <details className="memories">
          <summary>Used {memoryIds.length} {memoryIds.length === 1 ? 'memory' : 'memories'}</summary>
          <ul>{memoryIds.map((id) => <li key={id}><code>{id}</code></li>)}</ul>
        </details>
      )}
    </footer>
  );
}

export function MessageItem({ message, memoryIds }: { message: Message; memoryIds?: string[] }) {
  const assistant = message.role === MessageRole.ASSISTANT;
  const role = assistant ? 'Assistant' : message.role === MessageRole.USER ? 'You' : 'System';
  return (
    <li className={`message ${assistant ? 'assistant' : 'user'}`}>
      <span className="who">{role}</span>
      {assistant && <ToolCalls calls={message.toolCalls} />}
      <div className="text">{message.content}</div>
      {assistant && <ReplyFooter model={message.modelUsed} usage={message.usage} finish={message.finishReason} memoryIds={memoryIds} />}
    </li>
  );
}
