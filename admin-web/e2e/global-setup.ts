// Brings the stack up once for the whole run and tears it down after (the returned
// function). The tests read what they need from the file written here.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Stack, STACK_DIR } from './stack/stack';

export const STATE_FILE = path.join(STACK_DIR, 'state.json');

export default async function globalSetup(): Promise<() => Promise<void>> {
  const dist = path.resolve(import.meta.dirname, '../dist');
  if (!existsSync(path.join(dist, 'index.html'))) {
    throw new Error('admin-web/dist is missing: run `npm run build` first');
  }
  const stack = new Stack();
  const started = Date.now();
  try {
    const info = await stack.start(dist);
    writeFileSync(STATE_FILE, JSON.stringify(info, null, 2));
    console.log(`stack up in ${Date.now() - started} ms at ${info.baseUrl}`);
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return () => stack.stop();
}
