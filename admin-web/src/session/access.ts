// What the caller may see, from the roles WhoAmI reports. The server decides every call on
// its own; this only keeps the navigation to the pages whose calls the caller's built-in
// roles allow (custom roles add nothing here), and guards those pages' URLs.

/** The console's areas, each tied to the permission its main call needs. */
export type Area =
  | 'chat'
  | 'chat.write'
  | 'apiKeys'
  | 'audit'
  | 'audit.retention'
  | 'usage'
  | 'budgets'
  | 'users'
  | 'users.write'
  | 'memory'
  | 'sessions'
  | 'tenant'
  | 'sso'
  | 'sso.write'
  | 'providers'
  | 'profiles'
  | 'plugins'
  | 'plugins.manage'
  | 'models'
  | 'models.manage'
  | 'tenants';

const OWNER_ADMIN = ['owner', 'admin'];
const WORKERS = ['owner', 'admin', 'member'];
const AUDITORS = ['owner', 'admin', 'auditor'];

/** Built-in roles that open each area (mirrors the server's built-in grants). */
const GRANTS: Record<Area, readonly string[]> = {
  chat: [...WORKERS, 'viewer'],
  'chat.write': WORKERS,
  apiKeys: WORKERS,
  audit: AUDITORS,
  'audit.retention': ['owner'],
  usage: AUDITORS,
  budgets: OWNER_ADMIN,
  users: AUDITORS,
  'users.write': OWNER_ADMIN,
  memory: [...WORKERS, 'viewer'],
  sessions: [...WORKERS, 'viewer', 'auditor', 'platform-admin'],
  tenant: OWNER_ADMIN,
  sso: OWNER_ADMIN,
  'sso.write': ['owner'],
  providers: OWNER_ADMIN,
  profiles: OWNER_ADMIN,
  plugins: [...WORKERS, 'viewer'],
  'plugins.manage': OWNER_ADMIN,
  models: [...WORKERS, 'viewer'],
  'models.manage': OWNER_ADMIN,
  tenants: ['platform-admin'],
};

/** True when one of `roles` opens `area`. */
export function allows(roles: readonly string[], area: Area): boolean {
  return GRANTS[area].some((role) => roles.includes(role));
}

/** The roles a user may put on an API key: those they hold (platform-admin never). */
export function grantableKeyRoles(roles: readonly string[]): string[] {
  return roles.filter((role) => role !== 'platform-admin');
}
