// An independent OpenID Provider for the organization SSO tests: the npm package oidc-provider
// (installed by `make venv` into .venv/npm), on 127.0.0.1 and a free port.
//
//   node upstream_idp.mjs <node_modules dir> <config.json>
//
// config.json: {"clients": [{"client_id", "client_secret", "redirect_uris", "mode"?}],
//               "accounts": [{"login", "password", "email", "email_verified"?, "name"?}],
//               "open_password"?: "..."}
// With `open_password`, any login that is an email address signs in with that password too,
// as a verified account with that address (tests sign in as fresh addresses).
//
// Once listening it prints one JSON line, {"issuer": "http://127.0.0.1:<port>"}, and serves
// until it is killed. Sign-in is a small form (#login, #password, #sign-in) that checks the
// account's password; consent is implied (the test's clients are first-party), so a person signs
// in once and goes straight back to the client.
//
// A client's `mode` makes the provider misbehave at its token endpoint, to test what a relying
// party must refuse; the ID token is otherwise the provider's own:
//   "tampered"  a payload claim (email) changed, the provider's signature kept
//   "nonce"     re-signed with the provider's key, with another nonce
//   "audience"  re-signed with the provider's key, for another audience
//   "expired"   re-signed with the provider's key, expired an hour ago
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, configPath] = process.argv.slice(2);
const load = (entry) => import(pathToFileURL(join(modules, entry)).href);
const { default: Provider } = await load('oidc-provider/lib/index.js');
const jose = await load('jose/dist/webapi/index.js');
const config = JSON.parse(readFileSync(configPath, 'utf8'));

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'upstream-1', alg: 'RS256', use: 'sig' };
const accounts = new Map(config.accounts.map((a) => [a.login, a]));
function account(login) {
  if (accounts.has(login)) return accounts.get(login);
  if (config.open_password && /^[^@\s]+@[^@\s]+$/.test(login)) {
    return { login, password: config.open_password, email: login.toLowerCase() };
  }
  return undefined;
}
const modes = new Map(config.clients.map((c) => [c.client_id, c.mode || 'good']));

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>`
    + `<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginForm(uid, hint, error) {
  return page('Upstream IdP sign-in', `${error ? `<p id="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}">
  <label for="login">Login</label><input id="login" name="login" value="${escape(hint || '')}">
  <label for="password">Password</label><input id="password" name="password" type="password">
  <button id="sign-in" type="submit">Sign in</button>
</form>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 65536) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const claimsOf = (idToken) => JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());

async function resigned(claims) {
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid })
    .sign(privateKey);
}

async function misbehave(mode, idToken) {
  const claims = claimsOf(idToken);
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'tampered': {
      const [header, , signature] = idToken.split('.');
      return `${header}.${b64({ ...claims, email: 'someone.else@attacker.example' })}.${signature}`;
    }
    case 'nonce':
      return resigned({ ...claims, nonce: 'not-the-nonce-that-was-sent' });
    case 'audience':
      return resigned({ ...claims, aud: 'another-client' });
    case 'expired':
      return resigned({ ...claims, iat: now - 7200, exp: now - 3600 });
    default:
      return idToken;
  }
}

const server = createServer();
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: config.clients.map(({ mode, ...client }) => ({
    grant_types: ['authorization_code'], response_types: ['code'], ...client,
  })),
  jwks: { keys: [signingJwk] },
  cookies: { keys: ['upstream-idp-test-cookie-key'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const found = account(id);
    if (!found) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id, email: found.email, email_verified: found.email_verified ?? true,
          name: found.name,
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const { client, session } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

provider.use(async (ctx, next) => {
  const interaction = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (interaction) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    if (ctx.method === 'GET') {
      ctx.body = loginForm(details.uid, details.params.login_hint);
      return;
    }
    const form = await readForm(ctx.req);
    const signingIn = account(form.get('login') || '');
    if (!signingIn || signingIn.password !== form.get('password')) {
      ctx.status = 401;
      ctx.body = loginForm(details.uid, form.get('login'), 'Wrong login or password.');
      return;
    }
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: signingIn.login },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
    return;
  }
  await next();
  if (ctx.path === '/token' && ctx.status === 200 && ctx.body && ctx.body.id_token) {
    const mode = modes.get(ctx.oidc?.client?.clientId) || 'good';
    ctx.body = { ...ctx.body, id_token: await misbehave(mode, ctx.body.id_token) };
  }
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
