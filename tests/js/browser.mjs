// Drive Debian's Chromium through roomgate's IAP with playwright-core and print what
// happened as one JSON object. Usage: node browser.mjs '<json args>'
//   args: { app, second, email, outsider, userDataDir }
// app/second: URLs on two route domains; email: a participant's login at the provider;
// outsider: a non-participant's login.
import { chromium } from 'playwright-core';

const args = JSON.parse(process.argv[2]);
const out = { steps: [] };
const log = (s) => out.steps.push(s);

const context = await chromium.launchPersistentContext(args.userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
context.setDefaultTimeout(20000);
const page = context.pages()[0] ?? await context.newPage();
const visited = [];
// Every navigation request of the main frame, redirect hops included.
page.on('request', (r) => {
  if (r.isNavigationRequest() && r.frame() === page.mainFrame()) visited.push(r.url());
});

async function providerLogin(login) {
  await page.waitForSelector('input[name=login]');
  log(`provider login form at ${new URL(page.url()).origin}`);
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'any password');
  await page.click('button[type=submit]');
}

async function echo() {
  const text = await page.locator('body').innerText();
  try { return JSON.parse(text); } catch { return { raw: text }; }
}

try {
  // 1. A private route: the provider's sign-in, then the app at the original path.
  const first = new URL('/hello?x=1', args.app).toString();
  await page.goto(first);
  await providerLogin(args.email);
  await page.waitForURL(first);
  out.first = { url: page.url(), echo: await echo(), visited: [...visited] };
  const cookies = await context.cookies(args.app);
  out.first.cookie = cookies.find((c) => c.name === '__meshagent_iap') ?? null;
  if (out.first.cookie) out.first.cookie.value = out.first.cookie.value.length;

  // 2. A second route domain: no provider sign-in.
  visited.length = 0;
  const second = new URL('/there', args.second).toString();
  await page.goto(second);
  await page.waitForURL(second);
  out.second = {
    url: page.url(),
    echo: await echo(),
    visited: [...visited],
    sawProviderLogin: await page.locator('input[name=login]').count() > 0
      || visited.some((u) => u.includes('/interaction/')),
  };

  // 3. Sign out of the app: its cookie is cleared and the next visit goes to sign-in.
  await page.goto(new URL('/.roomgate/signout', args.app).toString());
  await page.click('#signout');
  await page.waitForSelector('#signed-out');
  const after = await context.cookies(args.app);
  log(`after sign-out: ${JSON.stringify(after.map((c) => c.name))}`);
  visited.length = 0;
  await page.goto(first);
  await page.waitForURL(first);
  out.signout = {
    cookieCleared: !after.some((c) => c.name === '__meshagent_iap'),
    steps: out.steps,
    wentThroughSignIn: visited.some((u) => u.includes('/.roomgate/start')),
  };

  // 4. A signed-in non-participant: 403 page.
  await context.clearCookies();
  let status = 0;
  page.on('response', (r) => { if (r.url().startsWith(first)) status = r.status(); });
  await page.goto(first);
  await providerLogin(args.outsider);
  await page.waitForURL(first);
  await page.waitForSelector('#code');
  out.outsider = { status, code: await page.locator('#code').innerText(), user: await page.locator('#user').innerText() };
} catch (e) {
  out.error = String(e && e.stack || e);
  out.url = page.url();
  try { out.body = (await page.content()).slice(0, 2000); } catch {}
} finally {
  await context.close();
}
console.log(JSON.stringify(out));
