// A real OpenID Provider for roomgate's browser test: npm `oidc-provider` on a free
// loopback port, one confidential client, and the provider's own development login
// form (any login, any password; the login becomes the email). Consent is implied for
// this first-party client. Prints one JSON line {"issuer": ...} once it listens.
//
// Usage: node op.mjs  (env: OP_CLIENT_ID, OP_CLIENT_SECRET, OP_REDIRECT_URI)
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const clientId = process.env.OP_CLIENT_ID ?? 'roomgate';
const clientSecret = process.env.OP_CLIENT_SECRET;
const redirectUri = process.env.OP_REDIRECT_URI;
if (!clientSecret || !redirectUri) {
  console.error('OP_CLIENT_SECRET and OP_REDIRECT_URI are required');
  process.exit(2);
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: id, email_verified: true, name: id.split('@')[0] };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (ctx, err) => console.error('op server_error', err));
provider.on('grant.error', (ctx, err) => console.error('op grant.error', err.message, err.error_description));

server.on('request', provider.callback());
console.log(JSON.stringify({ issuer, port }));

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
// Exit with the test: the parent closes our stdin.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
