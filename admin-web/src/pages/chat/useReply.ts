// Runs one streamed reply (a new message or a regeneration) and keeps its state, so the
// chat view can show it as it arrives and cancel it.
import { useCallback, useRef, useState } from 'react';
import { chat } from '../../api/clients';
import { problemOf, type ApiProblem } from '../../api/errors';
import { EMPTY_TURN, foldChunk, type Turn } from '../../chat/turn';
import type { ReplyChunk } from '../../gen/codexcontinue/v1/chat_pb.js';

/** A reply being streamed, or the last one streamed. */
export interface Streaming {
  conversationId: string;
  /** The user's message, for a new message (absent when regenerating). */
  userText?: string;
  turn: Turn;
  problem?: ApiProblem;
  running: boolean;
}

export interface ReplyRunner {
  current?: Streaming;
  send(conversationId: string, content: string, model: string): Promise<void>;
  regenerate(conversationId: string, model: string): Promise<void>;
  cancel(): Promise<void>;
  clear(): void;
  /** Memories each reply used, by reply message id (kept for this visit). */
  memoriesOf(replyId: string): string[] | undefined;
}

export function useReply(onDone: (conversationId: string) => void): ReplyRunner {
  const [current, setCurrent] = useState<Streaming>();
  const abort = useRef<AbortController | null>(null);
  const generation = useRef<string | undefined>(undefined);
  const memories = useRef(new Map<string, string[]>());

  const run = useCallback(async (
    conversationId: string,
    userText: string | undefined,
    open: (signal: AbortSignal) => AsyncIterable<{ chunk?: ReplyChunk }>,
  ) => {
    const controller = new AbortController();
    abort.current = controller;
    generation.current = undefined;
    let turn = EMPTY_TURN;
    setCurrent({ conversationId, userText, turn, running: true });
    try {
      for await (const message of open(controller.signal)) {
        turn = foldChunk(turn, message.chunk);
        generation.current = turn.generationId;
        setCurrent({ conversationId, userText, turn, running: !turn.done });
      }
      if (turn.replyMessageId) memories.current.set(turn.replyMessageId, turn.memoryIds);
      setCurrent({ conversationId, userText, turn: { ...turn, done: true }, running: false });
    } catch (error) {
      setCurrent({ conversationId, userText, turn, running: false, problem: problemOf(error) });
    } finally {
      abort.current = null;
      onDone(conversationId);
    }
  }, [onDone]);

  const send = useCallback((conversationId: string, content: string, model: string) =>
    run(conversationId, content, (signal) => chat.streamMessage(
      { conversationId, content, options: { model }, idempotencyKey: crypto.randomUUID() },
      { signal },
    )), [run]);

  const regenerate = useCallback((conversationId: string, model: string) =>
    run(conversationId, undefined, (signal) => chat.regenerateReply(
      { conversationId, options: { model } },
      { signal },
    )), [run]);

  const cancel = useCallback(async () => {
    const id = generation.current;
    if (id) {
      // The server ends the stream with the reply kept as far as it got.
      try {
        await chat.cancelGeneration({ generationId: id });
        return;
      } catch {
        // Fall through: closing the stream cancels too.
      }
    }
    abort.current?.abort();
  }, []);

  return {
    current,
    send,
    regenerate,
    cancel,
    clear: () => setCurrent(undefined),
    memoriesOf: (replyId) => memories.current.get(replyId),
  };
}
