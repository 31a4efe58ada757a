// A streamed reply as the chat view shows it: the chunks of StreamMessage or
// RegenerateReply folded, in order, into one state.
import type { FinishReason, ReplyChunk, ToolCallFinished } from '../gen/codexcontinue/v1/chat_pb.js';
import type { Usage } from '../gen/codexcontinue/v1/common_pb.js';

/** A tool call of the turn: running until its `finished` part arrives. */
export interface ToolCallView {
  callId: string;
  plugin: string;
  tool: string;
  finished?: Pick<ToolCallFinished, 'outcome' | 'latencyMs'>;
}

export interface Turn {
  userMessageId?: string;
  replyMessageId?: string;
  /** For CancelGeneration. */
  generationId?: string;
  text: string;
  toolCalls: ToolCallView[];
  done: boolean;
  usage?: Usage;
  modelUsed?: string;
  finishReason?: FinishReason;
  /** Memories the server recalled into the prompt. */
  memoryIds: string[];
}

export const EMPTY_TURN: Turn = { text: '', toolCalls: [], done: false, memoryIds: [] };

/** The turn after `chunk`. */
export function foldChunk(turn: Turn, chunk: ReplyChunk | undefined): Turn {
  const event = chunk?.event;
  switch (event?.case) {
    case 'started':
      return {
        ...turn,
        userMessageId: event.value.userMessageId || turn.userMessageId,
        replyMessageId: event.value.replyMessageId,
        generationId: event.value.generationId,
      };
    case 'delta':
      return { ...turn, text: turn.text + event.value };
    case 'toolCallStarted':
      return {
        ...turn,
        toolCalls: [...turn.toolCalls, {
          callId: event.value.callId, plugin: event.value.plugin, tool: event.value.tool,
        }],
      };
    case 'toolCallFinished': {
      const { callId, plugin, tool, outcome, latencyMs } = event.value;
      const known = turn.toolCalls.some((call) => call.callId === callId);
      const finished = { outcome, latencyMs };
      return {
        ...turn,
        toolCalls: known
          ? turn.toolCalls.map((call) => (call.callId === callId ? { ...call, finished } : call))
          : [...turn.toolCalls, { callId, plugin, tool, finished }],
      };
    }
    case 'completed':
      return {
        ...turn,
        done: true,
        usage: event.value.usage,
        modelUsed: event.value.modelUsed,
        finishReason: event.value.finishReason,
        memoryIds: [...event.value.memoryIds],
      };
    default:
      return turn;
  }
}
