// An OpenID provider for tests: npm `oidc-provider` (panva, certified OP)
// with one static confidential client, PKCE required, and an interaction
// that signs in a fixed user and grants what is asked without a form.
//
//   node oidc_provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// Prints "READY <issuer>" once listening. POST /rotate-keys replaces the
// signing key (JWKS rotation).
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// The package lives in .tools/npm (scripts/test installs it): OIDC_PROVIDER_NODE_MODULES.
const modules = process.env.OIDC_PROVIDER_NODE_MODULES;
const { default: Provider } = await import(pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js')).href);

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const ACCOUNT = 'user-ada';
const claims = {
  email: 'ada@example.com',
  email_verified: true,
  given_name: 'Ada',
  family_name: 'Lovelace',
  name: 'Ada Lovelace',
  groups: ['engineering', 'admins'],
};

function jwk(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

function build(kid) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    jwks: { keys: [jwk(kid)] },
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['given_name', 'family_name', 'name'],
      groups: ['groups'],
    },
    findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id, ...claims }) }),
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['portico-test-peer'] },
  });
  return provider;
}

let generation = 1;
let provider = build(`k${generation}`);

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: ACCOUNT } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    if (prompt.details.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((e) => { res.statusCode = 500; res.end(String(e)); });
    return;
  }
  if (req.method === 'POST' && req.url === '/rotate-keys') {
    generation += 1;
    provider = build(`k${generation}`);
    res.end(`k${generation}`);
    return;
  }
  provider.callback()(req, res);
});
server.listen(Number(port), '127.0.0.1', () => console.log(`READY ${issuer}`));
