// node-oidc-provider as the token benchmark's peer: client_credentials with ES256 JWT access
// tokens through resource indicators, served by WORKERS cluster workers on one port.
//
//   node oidc_provider.mjs <node_modules dir> <port> <workers>
//
// The primary generates one P-256 signing key and one client secret, hands both to every worker
// (environment), and prints one JSON line {"port", "client_id", "client_secret", "resource"} once
// every worker listens. Tokens live 30 minutes; nothing is stored (JWT access tokens).
import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, portArg, workersArg] = process.argv.slice(2);
const port = Number(portArg);
const workers = Number(workersArg || 2);
const CLIENT_ID = 'bench-es256';
const RESOURCE = 'https://api.bench.example/';
const SCOPE = 'bench:read';

if (cluster.isPrimary) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', alg: 'ES256', use: 'sig' };
  const secret = randomBytes(32).toString('base64url');
  const env = { BENCH_JWK: JSON.stringify(jwk), BENCH_SECRET: secret };
  let listening = 0;
  for (let i = 0; i < workers; i += 1) {
    cluster.fork(env).on('message', (msg) => {
      if (msg === 'listening' && ++listening === workers) {
        process.stdout.write(`${JSON.stringify({
          port, client_id: CLIENT_ID, client_secret: secret, resource: RESOURCE, scope: SCOPE,
        })}\n`);
      }
    });
  }
  cluster.on('exit', (worker, code) => {
    process.stderr.write(`worker ${worker.process.pid} exited (${code})\n`);
    process.exit(1);
  });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
      cluster.removeAllListeners('exit');
      for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
      process.exit(0);
    });
  }
} else {
  const { default: Provider } = await import(
    pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js')).href
  );
  const resourceServer = {
    scope: SCOPE,
    audience: RESOURCE,
    accessTokenTTL: 1800,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256' } },
  };
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: process.env.BENCH_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [JSON.parse(process.env.BENCH_JWK)] },
    scopes: [SCOPE],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          if (indicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
          return resourceServer;
        },
      },
    },
    ttl: { ClientCredentials: 1800 },
  });
  provider.on('server_error', (ctx, err) => process.stderr.write(`${err.stack}\n`));
  provider.listen(port, '127.0.0.1', () => process.send('listening'));
}
