import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { FinishReason, ReplyChunkSchema, type ReplyChunk } from '../gen/codexcontinue/v1/chat_pb.js';
import { UsageSchema } from '../gen/codexcontinue/v1/common_pb.js';
import { EMPTY_TURN, foldChunk } from './turn';

const chunk = (event: ReplyChunk['event']) => create(ReplyChunkSchema, { event });

describe('foldChunk', () => {
  it('builds a reply from started, deltas and completed', () => {
    const chunks = [
      chunk({ case: 'started', value: { $typeName: 'codexcontinue.v1.ReplyStarted', userMessageId: 'u1', replyMessageId: 'r1', generationId: 'g1' } }),
      chunk({ case: 'delta', value: 'Hel' }),
      chunk({ case: 'delta', value: 'lo' }),
      chunk({ case: 'completed', value: {
        $typeName: 'codexcontinue.v1.ReplyCompleted',
        usage: create(UsageSchema, { totalTokens: 7n }), modelUsed: 'stub/echo-1',
        finishReason: FinishReason.STOP, memoryIds: ['m1', 'm2'],
      } }),
    ];
    const turn = chunks.reduce(foldChunk, EMPTY_TURN);
    expect(turn).toMatchObject({
      generationId: 'g1', replyMessageId: 'r1', text: 'Hello', done: true,
      modelUsed: 'stub/echo-1', memoryIds: ['m1', 'm2'],
    });
    expect(turn.usage?.totalTokens).toBe(7n);
  });

  it('shows tool calls as they start and finish, even unannounced ones', () => {
    let turn = foldChunk(EMPTY_TURN, chunk({ case: 'toolCallStarted', value: { $typeName: 'codexcontinue.v1.ToolCallStarted', callId: 'c1', plugin: 'p', tool: 'add' } }));
    expect(turn.toolCalls).toEqual([{ callId: 'c1', plugin: 'p', tool: 'add' }]);
    turn = foldChunk(turn, chunk({ case: 'toolCallFinished', value: { $typeName: 'codexcontinue.v1.ToolCallFinished', callId: 'c1', plugin: 'p', tool: 'add', outcome: 'ok', latencyMs: 12n } }));
    turn = foldChunk(turn, chunk({ case: 'toolCallFinished', value: { $typeName: 'codexcontinue.v1.ToolCallFinished', callId: 'c2', plugin: 'p', tool: 'sub', outcome: 'timeout', latencyMs: 5000n } }));
    expect(turn.toolCalls.map((c) => [c.callId, c.finished?.outcome])).toEqual([['c1', 'ok'], ['c2', 'timeout']]);
  });

  it('ignores empty chunks', () => {
    expect(foldChunk(EMPTY_TURN, undefined)).toBe(EMPTY_TURN);
    expect(foldChunk(EMPTY_TURN, chunk({ case: undefined }))).toBe(EMPTY_TURN);
  });
});
