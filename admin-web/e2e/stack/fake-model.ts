// A stand-in model provider speaking OpenAI's chat completions wire format, streamed as
// server-sent events exactly as the real API does. It echoes the last user message; a
// message containing "slowly" is answered one word every 300 ms (for cancelling). Offered
// tools and asked to "use the tool", it calls the first tool with the text after the colon,
// then answers with what the tool returned.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export const FAKE_MODEL = 'echo-1';

interface ChatBody {
  model?: string;
  stream?: boolean;
  messages?: { role: string; content?: unknown }[];
  tools?: { type: string; function: { name: string } }[];
}

function lastUserText(body: ChatBody): string {
  const last = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user');
  const content = last?.content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part) => (typeof part === 'object' && part && 'text' in part ? String(part.text) : '')).join('');
  }
  return '';
}

/** The reply to `text`: what a title request and a chat turn get. */
export function replyTo(text: string): string {
  return `Echo: ${text.replace(/\s+/g, ' ').trim()}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface FakeModel {
  url: string;
  /** Requests seen, newest last. */
  requests: ChatBody[];
  close(): Promise<void>;
}

export async function startFakeModel(): Promise<FakeModel> {
  const requests: ChatBody[] = [];
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
      return;
    }
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (part: string) => { raw += part; });
    req.on('end', () => {
      void answer(JSON.parse(raw || '{}') as ChatBody, res);
    });
  });
  let closed = false;
  async function answer(body: ChatBody, res: http.ServerResponse) {
    requests.push(body);
    const text = lastUserText(body);
    const last = body.messages?.at(-1);
    const tool = body.tools?.[0]?.function.name;
    if (tool && last?.role === 'user' && /use the tool/i.test(text) && body.stream) {
      callTool(body, res, tool, text.slice(text.indexOf(':') + 1).trim());
      return;
    }
    const reply = last?.role === 'tool' ? `The tool said ${String(last.content)}` : replyTo(text);
    const id = `chatcmpl-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const model = body.model ?? FAKE_MODEL;
    const promptTokens = Math.max(1, Math.ceil(JSON.stringify(body.messages ?? []).length / 4));
    const words = reply.split(/(?<= )/);
    const usage = { prompt_tokens: promptTokens, completion_tokens: words.length, total_tokens: promptTokens + words.length };
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop' }],
        usage,
      }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (chunk: object) => res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    const base = { id, object: 'chat.completion.chunk', created, model };
    send({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
    const slow = /slowly/i.test(text);
    for (const word of words) {
      if (res.destroyed || closed) return;
      await sleep(slow ? 300 : 15);
      send({ ...base, choices: [{ index: 0, delta: { content: word }, finish_reason: null }] });
    }
    send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    send({ ...base, choices: [], usage });
    res.end('data: [DONE]\n\n');
  }
  function callTool(body: ChatBody, res: http.ServerResponse, name: string, argument: string) {
    const base = { id: `chatcmpl-${requests.length}`, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: body.model ?? FAKE_MODEL };
    const args = JSON.stringify({ text: argument });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (chunk: object) => res.write(`data: ${JSON.stringify({ ...base, ...chunk })}\n\n`);
    send({ choices: [{ index: 0, delta: { role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name, arguments: '' } }] }, finish_reason: null }] });
    send({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: args } }] }, finish_reason: null }] });
    send({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] });
    send({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } });
    res.end('data: [DONE]\n\n');
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => new Promise((resolve) => {
      closed = true;
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
