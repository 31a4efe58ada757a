// What the console shows when a call fails: the gRPC code in words, the server's message,
// and, for bad input, the request field it names ("field: what is wrong"), so a form can
// show the message next to that field.
import { Code, ConnectError } from '@connectrpc/connect';

/** A failed call, ready to show. */
export interface ApiProblem {
  /** The gRPC code. */
  code: Code;
  /** The request field the server named (a path such as `budget.token_limit`), if any. */
  field?: string;
  /** What went wrong, without the field prefix when there is one. */
  message: string;
}

// The server words bad input as "<field path>: <description>".
const FIELD_MESSAGE = /^([a-z_][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z_][a-z0-9_]*(?:\[\d+\])?)*): (.+)$/s;

/** Turns anything thrown by a call into an [`ApiProblem`]. */
export function problemOf(error: unknown): ApiProblem {
  const err = ConnectError.from(error);
  const message = err.rawMessage || Code[err.code] || 'request failed';
  if (err.code === Code.InvalidArgument) {
    const match = FIELD_MESSAGE.exec(message);
    if (match?.[1] && match[2]) {
      return { code: err.code, field: match[1], message: match[2] };
    }
  }
  return { code: err.code, message };
}

/** True when the problem concerns `field` or something inside it. */
export function concerns(problem: ApiProblem | undefined, field: string): boolean {
  const named = problem?.field;
  if (!named) return false;
  return named === field || named.startsWith(`${field}.`) || named.startsWith(`${field}[`)
    || named.endsWith(`.${field}`);
}

/** A one-line summary: "Invalid argument: budget.token_limit: must be positive". */
export function describe(problem: ApiProblem): string {
  const code = codeName(problem.code);
  return problem.field ? `${code}: ${problem.field}: ${problem.message}` : `${code}: ${problem.message}`;
}

/** The code in words, e.g. "Permission denied". */
export function codeName(code: Code): string {
  const name = Code[code] ?? 'Unknown';
  return name.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase())
    .replace(/ (\w)/g, (_, c: string) => ` ${c.toLowerCase()}`);
}
