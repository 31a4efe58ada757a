// A real OpenID Connect provider for the end-to-end tests (npm oidc-provider, OpenID
// Certified). It listens on a free loopback port, prints {"issuer": "..."} as its first
// stdout line, and serves one confidential client with PKCE required. Its development
// login form accepts any login name with any password; accounts and their claims (email,
// name, groups) come from OIDC_USERS.
//
// Environment: OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (comma-separated),
// OIDC_USERS (JSON: {"login": {"email": ..., "name": ..., "groups": [...]}}), and optionally
// OIDC_PORT (to restart a provider at the same issuer), OIDC_KEY_ID (a new id for the
// fresh signing key, to rotate keys across such a restart), OIDC_ID_TOKEN_TTL (seconds) and
// OIDC_CLOCK_OFFSET_SECONDS (the provider's clock runs this far off, e.g. to issue ID tokens
// that have already expired).
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const clockOffset = Number(process.env.OIDC_CLOCK_OFFSET_SECONDS ?? 0) * 1000;
if (clockOffset !== 0) {
  const realNow = Date.now;
  Date.now = () => realNow() + clockOffset;
}

const users = JSON.parse(process.env.OIDC_USERS ?? '{}');
const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

const server = http.createServer();
server.listen(Number(process.env.OIDC_PORT ?? 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      redirect_uris: process.env.OIDC_REDIRECT_URIS.split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'groups'],
    },
    conformIdTokenClaims: false,
    ttl: { IdToken: Number(process.env.OIDC_ID_TOKEN_TTL ?? 3600) },
    jwks: { keys: [{ ...signingKey, kid: process.env.OIDC_KEY_ID ?? 'test-key-1', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: ['codexcontinue-test-cookie-key'] },
    async findAccount(_ctx, id) {
      const user = users[id] ?? { email: `${id}@example.test`, name: id, groups: [] };
      return {
        accountId: id,
        async claims() {
          // email_verified: true unless the account says otherwise (null: not sent at all).
          const verified = user.email_verified === null ? undefined : (user.email_verified ?? true);
          return { sub: id, email: user.email, email_verified: verified, name: user.name, groups: user.groups };
        },
      };
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
