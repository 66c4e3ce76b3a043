// Drive Debian's Chromium through an embedded room app with playwright-core and print
// what happened as one JSON object. Usage: node embed.mjs '<json args>'
//   args: { rg, key, cert, certKey, room, domain, userDataDir }
// rg: roomgate's origin for the app domain (https://app.apps.test:PORT); key: a
// management key (mk_...); cert/certKey: PEM files this script's host server presents.
// The script serves the host pages itself (its own HTTPS origin: https://host.test:PORT
// is allowed, https://evil.test:PORT is not), and mints sessions as a SaaS backend does.
import https from 'node:https';
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const args = JSON.parse(process.argv[2]);
const out = { steps: [] };
const log = (s) => out.steps.push(s);
const rg = new URL(args.rg);

// The backend's calls to roomgate's management API (the key never reaches the browser).
function api(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = https.request({
      host: '127.0.0.1', port: rg.port, method, path, servername: rg.hostname,
      rejectUnauthorized: false,
      headers: {
        host: rg.host, authorization: `Bearer ${args.key}`,
        'content-type': 'application/json', 'content-length': Buffer.byteLength(data),
      },
    }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

let hostPort = 0;
const sessions = {}; // by host name: the minted session and its first token
const issued = []; // every access token handed to a page
const hostPage = (rgOrigin) => `<!doctype html><html><head><meta charset="utf-8"><title>host</title>
<script src="${rgOrigin}/.roomgate/embed.js"></script></head><body>
<h1>customer page</h1><iframe id="app" width="600" height="300"></iframe>
<script>
fetch('/session', {method: 'POST'}).then((r) => r.json()).then((s) => {
  window.mounted = RoomgateEmbed.mount({
    iframe: document.getElementById('app'),
    launchUrl: s.launch_url,
    getToken: () => fetch('/token', {method: 'POST'}).then((r) => r.json()),
  });
});
</script></body></html>`;

const server = https.createServer({
  cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.certKey),
}, async (req, res) => {
  const host = (req.headers.host || '').split(':')[0];
  try {
    if (req.url === '/' ) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(hostPage(args.rg));
    } else if (req.url === '/session' && req.method === 'POST') {
      // Every session allows only the host.test origin, whoever asks.
      const r = await api('POST', '/.roomgate/api/v1/embed/sessions', {
        room: args.room, domain: args.domain, path: '/app', user: `customer-of-${host}`,
        api: { plan: 'pro' }, allowed_origins: [`https://host.test:${hostPort}`], ttl: '10m',
      });
      if (r.status !== 201) throw new Error(`mint: ${r.status} ${JSON.stringify(r.body)}`);
      sessions[host] = { ...r.body, handed: false };
      issued.push(r.body.access_token);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ launch_url: r.body.launch_url }));
    } else if (req.url === '/token' && req.method === 'POST') {
      const s = sessions[host];
      let body;
      if (!s.handed) {
        s.handed = true;
        body = { access_token: s.access_token, token_expires_at: s.token_expires_at };
      } else {
        const r = await api('POST', `/.roomgate/api/v1/embed/sessions/${s.session_id}/tokens`);
        body = r.body;
        issued.push(body.access_token);
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    } else {
      res.writeHead(404); res.end();
    }
  } catch (e) {
    log(`host server: ${e}`);
    res.writeHead(500); res.end(String(e));
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
hostPort = server.address().port;

const context = await chromium.launchPersistentContext(args.userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  ignoreHTTPSErrors: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-proxy-server', '--ignore-certificate-errors',
    '--host-resolver-rules=MAP * 127.0.0.1',
  ],
});
context.setDefaultTimeout(20000);
const visited = [];
context.on('request', (r) => visited.push(r.url()));
const consoleLines = [];

async function appResult(page) {
  const frame = page.frameLocator('#app');
  await frame.locator('#out').filter({ hasNotText: 'waiting' }).waitFor();
  return JSON.parse(await frame.locator('#out').innerText());
}

try {
  // 1. An allowed origin: the app inside gets its token by postMessage and calls the API.
  const page = context.pages()[0] ?? await context.newPage();
  page.on('console', (m) => consoleLines.push(m.text()));
  await page.goto(`https://host.test:${hostPort}/`);
  const result = await appResult(page);
  out.allowed = { status: result.status, echo: JSON.parse(result.body) };
  const frameUrl = page.frames().find((f) => f !== page.mainFrame())?.url();
  out.allowed.frameUrl = frameUrl;
  const cookies = await context.cookies(args.rg);
  out.allowed.cookie = cookies.find((c) => c.name === '__Host-roomgate_embed') ?? null;
  if (out.allowed.cookie) out.allowed.cookie.value = out.allowed.cookie.value.length;
  log('allowed origin: app answered');

  // 2. A refreshed token reaches the app too (the host asks getToken again).
  await page.evaluate(() => window.mounted.refresh());
  log('refreshed');

  // 3. The same launch on a page of an origin the session does not allow.
  const evil = await context.newPage();
  const evilConsole = [];
  evil.on('console', (m) => evilConsole.push(m.text()));
  let appResponse = null;
  evil.on('response', (r) => { if (new URL(r.url()).pathname === '/app') appResponse = r.status(); });
  await evil.goto(`https://evil.test:${hostPort}/`);
  await evil.waitForEvent('console', {
    predicate: (m) => m.text().includes('frame-ancestors'), timeout: 15000,
  }).catch(() => {});
  const evilFrame = evil.frames().find((f) => f !== evil.mainFrame());
  let rendered = false;
  try { rendered = (await evilFrame.locator('#out').count()) > 0; } catch { rendered = false; }
  out.blocked = {
    console: evilConsole.filter((l) => l.includes('frame-ancestors')),
    appResponse,
    rendered,
  };

  // 4. A launch URL used again fails.
  const reuse = await context.newPage();
  const resp = await reuse.goto(sessions['host.test'].launch_url);
  out.reuse = { status: resp.status(), body: await resp.text() };
} catch (e) {
  out.error = String(e && e.stack || e);
  out.console = consoleLines;
} finally {
  out.visited = visited;
  out.tokens = issued;
  await context.close();
  server.close();
}
console.log(JSON.stringify(out));
