// Child processes of the test stack: started with a clean environment, their first
// meaningful stdout line awaited, and stopped for certain at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export interface Started {
  child: ChildProcess;
  /** The stdout line `ready` accepted. */
  line: string;
  logPath: string;
}

/** Runs `command` to completion; its stdout, or an error with its stderr. */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (part: Buffer) => { out += part.toString(); });
    child.stderr.on('data', (part: Buffer) => { err += part.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

/**
 * Starts a long-running `command`, logging stderr to `logPath`, and waits (up to
 * `limitMs`) for a stdout line that `ready` accepts.
 */
export function start(
  command: string, args: string[], env: NodeJS.ProcessEnv, logPath: string,
  ready: (line: string) => boolean, limitMs = 60_000,
): Promise<Started> {
  return new Promise((resolve, reject) => {
    const log = createWriteStream(logPath);
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr.pipe(log);
    const lines = createInterface({ input: child.stdout });
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      let tail = '';
      try { tail = readFileSync(logPath, 'utf8').split('\n').slice(-30).join('\n'); } catch { /* no log yet */ }
      reject(new Error(`${command} ${why}; its log (${logPath}):\n${tail}`));
    };
    const timer = setTimeout(() => fail(`stayed silent for ${limitMs} ms`), limitMs);
    child.on('error', (error) => fail(`could not start: ${error.message}`));
    child.on('exit', (code) => fail(`exited with ${code} before it was ready`));
    lines.on('line', (line) => {
      if (!ready(line)) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      // Keep draining stdout so the child never blocks on a full pipe.
      lines.removeAllListeners('line');
      lines.on('line', () => {});
      resolve({ child, line, logPath });
    });
  });
}

/** Stops `child`: SIGTERM, then SIGKILL after `graceMs`. */
export function stop(child: ChildProcess | undefined, graceMs = 10_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  });
}
