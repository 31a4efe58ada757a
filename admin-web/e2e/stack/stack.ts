// The whole stack the browser tests run against, brought up from the built binary: a fresh
// database, the server (serving the built console at /console/), a real OpenID Connect
// provider, and a stand-in model provider; then the tenant is set up through the API as
// an owner would.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { AdminService, ProviderKind } from '../../src/gen/codexcontinue/v1/admin_pb.js';
import { createDatabase, dropDatabase, type Database } from './database';
import { startFakeModel, FAKE_MODEL, type FakeModel } from './fake-model';
import { run, start, stop, type Started } from './processes';

const WEB = path.resolve(import.meta.dirname, '../..');
const REPO = path.resolve(WEB, '..');
export const STACK_DIR = path.join(WEB, 'e2e/.stack');

/** People at the identity provider, by login name. Group → role map below. */
export const ACCOUNTS = {
  owner: { email: 'owner@acme.example', name: 'Olivia Owner', groups: [] },
  alice: { email: 'alice@acme.example', name: 'Alice Member', groups: ['eng'] },
  victor: { email: 'victor@acme.example', name: 'Victor Viewer', groups: ['viewers'] },
  audrey: { email: 'audrey@acme.example', name: 'Audrey Auditor', groups: ['audit'] },
} as const;
export const GROUP_ROLES = { eng: ['member'], viewers: ['viewer'], audit: ['auditor'] } as const;
export const TENANT = 'acme';
export const CLIENT_ID = 'codexcontinue-console';
const CLIENT_SECRET = randomBytes(16).toString('hex');

/** What the tests need to know about the running stack. */
export interface StackInfo {
  /** The server, e.g. http://127.0.0.1:41234. */
  baseUrl: string;
  /** Owner of tenant `acme` (API key). */
  ownerKey: string;
  /** Owner of the platform tenant, a platform admin (API key). */
  platformKey: string;
  issuer: string;
  modelAlias: string;
  /** Long-term memory works (the embedding model is served). */
  memory: boolean;
}

function need(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run \`eval "$(scripts/dev-services.sh env test)"\` in the repository first (make test does)`);
  }
  return value;
}

export class Stack {
  info?: StackInfo;
  private db?: Database;
  private server?: Started;
  private idp?: Started;
  private model?: FakeModel;
  private adminUrl = '';
  private redisUrl = '';
  private keyPrefix = `console-e2e-${randomBytes(6).toString('hex')}:`;

  async start(consoleDir: string): Promise<StackInfo> {
    this.adminUrl = need('CODEXCONTINUE_TEST_POSTGRES_ADMIN_URL');
    this.redisUrl = need('REDIS_URL');
    const masterKey = need('CODEXCONTINUE_CRYPTO__MASTER_KEY');
    const bin = path.resolve(WEB, process.env.CODEXCONTINUE_BIN ?? '../target/debug/codexcontinue');
    if (!existsSync(bin)) throw new Error(`${bin} not found: build it first (cargo build --bin codexcontinue; make test does)`);
    if (!existsSync(path.join(REPO, 'tests/oidc/node_modules/oidc-provider'))) {
      throw new Error('the identity provider is not installed: run `scripts/dev-services.sh tools` in the repository');
    }
    mkdirSync(STACK_DIR, { recursive: true });

    this.db = await createDatabase(this.adminUrl);
    const base = {
      PATH: process.env.PATH,
      DATABASE_URL: this.db.appUrl,
      REDIS_URL: this.redisUrl,
      CODEXCONTINUE_CRYPTO__MASTER_KEY: masterKey,
    };
    await run(bin, ['migrate'], { ...base, CODEXCONTINUE_DATABASE__MIGRATION_URL: this.db.ownerUrl });
    const ownerKey = (await run(bin, ['bootstrap', '--tenant', TENANT, '--admin-email', ACCOUNTS.owner.email], base)).trim();
    const platformKey = (await run(bin, ['bootstrap', '--tenant', 'platform', '--admin-email', 'ops@platform.example', '--platform-admin'], base)).trim();
    if (!ownerKey.startsWith('cc_live_') || !platformKey.startsWith('cc_live_')) {
      throw new Error(`bootstrap printed no API key: ${ownerKey} ${platformKey}`);
    }

    const models = this.embeddingModel();
    this.model = await startFakeModel();
    this.server = await start(bin, ['serve'], {
      ...base,
      CODEXCONTINUE_SERVER__LISTEN: '127.0.0.1:0',
      CODEXCONTINUE_SERVER__CONSOLE_DIR: consoleDir,
      CODEXCONTINUE_REDIS__KEY_PREFIX: this.keyPrefix,
      CODEXCONTINUE_HEALTH__PROBE_INTERVAL: '100ms',
      CODEXCONTINUE_TELEMETRY__LOG_FORMAT: 'json',
      // The identity provider and the stand-in model listen on this machine.
      CODEXCONTINUE_EGRESS__ALLOW: '["127.0.0.0/8"]',
      // The WebAssembly components the repository ships (text_stats).
      CODEXCONTINUE_PLUGINS__WASM_FOLDER: path.join(REPO, 'server/sandbox/plugins'),
      ...(models ? { CODEXCONTINUE_INFERENCE__MODELS_DIR: models } : {}),
      [`CODEXCONTINUE_LLM__PRICES__${FAKE_MODEL.toUpperCase()}__PROMPT_PER_MILLION`]: '1000000',
      [`CODEXCONTINUE_LLM__PRICES__${FAKE_MODEL.toUpperCase()}__COMPLETION_PER_MILLION`]: '2000000',
    }, path.join(STACK_DIR, 'server.log'), (line) => line.startsWith('codexcontinue listening on '));
    const baseUrl = `http://${this.server.line.slice('codexcontinue listening on '.length).trim()}`;

    this.idp = await start('node', [path.join(REPO, 'tests/oidc/provider.mjs')], {
      PATH: process.env.PATH,
      OIDC_CLIENT_ID: CLIENT_ID,
      OIDC_CLIENT_SECRET: CLIENT_SECRET,
      OIDC_REDIRECT_URIS: `${baseUrl}/auth/callback`,
      OIDC_USERS: JSON.stringify(ACCOUNTS),
    }, path.join(STACK_DIR, 'idp.log'), (line) => line.startsWith('{'));
    const issuer = (JSON.parse(this.idp.line) as { issuer: string }).issuer;

    const modelAlias = 'default';
    await this.configure(baseUrl, ownerKey, issuer, modelAlias);
    this.info = { baseUrl, ownerKey, platformKey, issuer, modelAlias, memory: Boolean(models) };
    return this.info;
  }

  /**
   * A models folder holding only the shipped embedding model (from `make models`, found
   * through CODEXCONTINUE_TEST_MODELS_DIR), which memory needs; none without it.
   */
  private embeddingModel(): string | undefined {
    const shipped = process.env.CODEXCONTINUE_TEST_MODELS_DIR;
    const source = shipped && path.join(shipped, 'minilm-l6');
    if (!source || !existsSync(path.join(source, 'manifest.toml'))) return undefined;
    const dir = path.join(STACK_DIR, 'models');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    symlinkSync(source, path.join(dir, 'minilm-l6'));
    return dir;
  }

  /** What the tenant's owner sets up: sign-in through the provider, and a model. */
  private async configure(baseUrl: string, ownerKey: string, issuer: string, alias: string) {
    const admin = createClient(AdminService, createGrpcTransport({ baseUrl }));
    const headers = { authorization: `Bearer ${ownerKey}` };
    await admin.setIdentityProvider({
      identityProvider: {
        issuerUrl: issuer,
        clientId: CLIENT_ID,
        allowedEmailDomains: ['acme.example'],
        groupsClaim: 'groups',
        groupRoles: Object.fromEntries(Object.entries(GROUP_ROLES).map(([group, roles]) => [group, { roles: [...roles] }])),
      },
      clientSecret: CLIENT_SECRET,
    }, { headers });
    await admin.setProvider({
      provider: {
        name: 'stub',
        kind: ProviderKind.OPENAI_COMPATIBLE,
        endpoint: this.model!.url,
        models: [FAKE_MODEL],
        onPremises: true,
      },
      credential: 'stand-in-key',
    }, { headers });
    await admin.setModelRoute({ route: { alias, targets: [{ provider: 'stub', model: FAKE_MODEL }] } }, { headers });
  }

  /** Stops everything and drops the database; never throws. */
  async stop(): Promise<void> {
    await Promise.allSettled([stop(this.server?.child), stop(this.idp?.child), this.model?.close()]);
    if (this.db) {
      await dropDatabase(this.adminUrl, this.db.name).catch((error: unknown) => {
        console.warn(`could not drop ${this.db?.name}: ${String(error)}`);
      });
    }
    await run('sh', ['-c', `redis-cli -u "$REDIS_URL" --scan --pattern "${this.keyPrefix}*" | xargs -r redis-cli -u "$REDIS_URL" DEL > /dev/null`],
      { PATH: process.env.PATH, REDIS_URL: this.redisUrl }).catch(() => { /* keys expire anyway */ });
  }
}
