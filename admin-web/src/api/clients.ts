// The typed clients of the server's services, over gRPC-Web to the page's own origin
// (the server serves the console, so no CORS). Every call carries the caller's
// credential; an UNAUTHENTICATED answer signs the console out.
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-web';
import { AdminService } from '../gen/codexcontinue/v1/admin_pb.js';
import { AuditService } from '../gen/codexcontinue/v1/audit_pb.js';
import { AuthService } from '../gen/codexcontinue/v1/auth_pb.js';
import { ChatService } from '../gen/codexcontinue/v1/chat_pb.js';
import { MemoryService } from '../gen/codexcontinue/v1/memory_pb.js';
import { ModelService } from '../gen/codexcontinue/v1/models_pb.js';
import { PluginService } from '../gen/codexcontinue/v1/plugins_pb.js';
import { currentToken } from '../session/credential';

let onUnauthenticated: () => void = () => {};

/** What to do when the server no longer accepts the credential. */
export function whenUnauthenticated(handler: () => void): void {
  onUnauthenticated = handler;
}

function signOutOn(error: unknown): never {
  if (error instanceof ConnectError && error.code === Code.Unauthenticated && currentToken()) {
    onUnauthenticated();
  }
  throw error;
}

const authenticate: Interceptor = (next) => async (request) => {
  const token = currentToken();
  if (token) request.header.set('authorization', `Bearer ${token}`);
  try {
    const response = await next(request);
    if (!response.stream) return response;
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        try {
          yield* messages;
        } catch (error) {
          signOutOn(error);
        }
      })(),
    };
  } catch (error) {
    return signOutOn(error);
  }
};

const transport = createGrpcWebTransport({
  baseUrl: typeof window === 'undefined' ? 'http://localhost' : window.location.origin,
  interceptors: [authenticate],
});

export const auth = createClient(AuthService, transport);
export const admin = createClient(AdminService, transport);
export const audit = createClient(AuditService, transport);
export const chat = createClient(ChatService, transport);
export const memory = createClient(MemoryService, transport);
export const models = createClient(ModelService, transport);
export const plugins = createClient(PluginService, transport);
