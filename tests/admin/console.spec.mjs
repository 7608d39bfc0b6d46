// The Admin Console in a real browser (Debian chromium driven by playwright-core): the seed's
// steps as an administrator does them, each checked in the page and through the API, then the
// security properties. Started by scripts/browser-tests with a fresh `syncvault serve`.
//
// Env: ORG_URL, ADMIN_EMAIL, ADMIN_PASSWORD, SYNCVAULT_BIN, SHOTS (screenshot directory),
//      PLAYWRIGHT (path of playwright-core), WORK (a scratch directory).
import { createRequire } from 'node:module';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT);
const ORG = process.env.ORG_URL;
const ADMIN = process.env.ADMIN_EMAIL;
const SHOTS = process.env.SHOTS;
const WORK = process.env.WORK;
mkdirSync(SHOTS, { recursive: true });

let step = 0;
function log(what) { console.log(`browser test: ${++step}. ${what}`); }

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 850 } });
const page = await context.newPage();
page.setDefaultTimeout(15000);
const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
// The same page in a phone-sized window (an administrator on the road), then back.
async function phoneShot(name) {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  await page.setViewportSize({ width: 1200, height: 850 });
}
// The page fits a phone: nothing wider than the window (wide tables scroll inside their card).
async function fitsPhone(name) {
  await page.setViewportSize({ width: 390, height: 844 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  await page.setViewportSize({ width: 1200, height: 850 });
  assert.ok(width <= 390, `${name} is ${width}px wide on a 390px phone`);
}
const sessionCookie = async () =>
  (await context.cookies()).find((c) => c.name === 'syncvault_admin');

/** The provider's login form, as a person fills it in. */
async function providerLogin(email) {
  await page.waitForURL(/\/idp\/authorize/);
  await page.fill('#username', email);
  await page.fill('#password', 'demo');
  await page.click('button[value=login]');
}

/** An admin API token through the provider's sign-in, as `syncvault admin` gets one. */
async function apiToken(email) {
  const start = await (await fetch(`${ORG}/admin/api/session/provider`, { method: 'POST' })).json();
  const form = await (await fetch(start.authorization_url)).text();
  const requestId = form.match(/name="request_id" value="([^"]+)"/)[1];
  const answer = await fetch(start.authorization_url.split('?')[0], {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ request_id: requestId, username: email, password: 'demo', action: 'login' }),
  });
  const callback = answer.headers.get('location');
  const r = await fetch(callback);
  return { status: r.status, body: await r.json().catch(() => null) };
}

async function api(token, path) {
  const r = await fetch(`${ORG}/admin/api${path}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, `${path}: HTTP ${r.status}`);
  return r.json();
}

/** The harness, with the offline password on stdin. */
function harness(dir, args, stdin = 'password1\n') {
  return spawnSync(process.env.SYNCVAULT_BIN, ['--dir', dir, '--json', '--password-stdin', ...args],
    { input: stdin, encoding: 'utf8', timeout: 120000 });
}

// 1. Sign in to the Admin Console as the System Administrator.
log('sign in with the administrator password');
await page.goto(`${ORG}/admin`);
await page.waitForURL(/\/admin\/login/);
const anonymous = await sessionCookie();
assert.equal(anonymous, undefined, 'the sign-in page makes no session (only a sign-in CSRF cookie)');
await shot('1-sign-in');
await page.fill('#email', ADMIN);
await page.fill('#password', 'wrong password');
await page.click('#sign-in');
await page.getByRole('alert').waitFor();
assert.match(await page.getByRole('alert').innerText(), /wrong email or password/i);
await page.fill('#email', ADMIN);
await page.fill('#password', process.env.ADMIN_PASSWORD);
await page.click('#sign-in');
await page.waitForURL(/\/admin\/settings/);
const signedIn = await sessionCookie();
assert.ok(signedIn.httpOnly && signedIn.sameSite === 'Strict', 'HttpOnly, SameSite=Strict');
assert.notEqual(anonymous?.value, signedIn.value, 'a new session id at sign-in (no fixation)');
assert.match(await page.locator('#connection-status').innerText(), /Not connected/);
assert.equal(await page.locator('#user-modes').innerText(), 'oauth, credentials');
// Who may sign in: the built-in provider's seeded users are linked by email at their first
// sign-in; nobody is created automatically.
assert.equal(await page.locator('#match-email').isChecked(), true);
assert.equal(await page.locator('#provision-unknown').isChecked(), false);
assert.match(await page.locator('#provider-line th').innerText(), /Built-in development provider/);
await shot('2-organization');
await page.click('a[href="/admin/devices"]');
assert.match(await page.locator('#no-devices').innerText(), /No device has synchronized yet/);
await page.click('a[href="/admin/settings"]');

// 2. Settings > Organization: Connect... signs in at the provider with the account to associate.
log('connect the identity provider');
await page.click('#connect');
await shot('3-provider-login');
await providerLogin(ADMIN);
await page.waitForURL(/\/admin\/settings/);
assert.match(await page.locator('#connection-status').innerText(), /Connected to/);
assert.equal(await page.locator('#user-modes').innerText(), 'oauth');
await shot('4-connected');
const discovery = await (await fetch(`${ORG}/.well-known/syncvault`)).json();
assert.deepEqual(discovery.user_modes, ['oauth'], 'discovery lists only oauth');
const admin = await apiToken(ADMIN);
assert.equal(admin.status, 200);
const token = admin.body.token;
const org = await api(token, '/organization');
assert.equal(org.connection.admin_email, ADMIN);
assert.deepEqual(org.sign_in_policy, { match_email: true, provision_unknown: false });

// 2b. A link to the console from another site arrives without the SameSite=Strict session
// cookie: it lands on the sign-in page, which offers to open the console, and the open tab
// stays signed in (the anonymous page wrote no session over it).
log('a link from another site does not sign the open tab out');
const before = await sessionCookie();
const elsewhere = await context.newPage();
await elsewhere.goto(`data:text/html,<a id="to-console" href="${ORG}/admin/users">Contoso users</a>`);
await elsewhere.click('#to-console');
await elsewhere.waitForURL(/\/admin\/login/);
assert.match(await elsewhere.locator('#signed-in-elsewhere').innerText(), /may already be signed in/);
assert.equal((await sessionCookie()).value, before.value, 'the session cookie is unchanged');
await page.click('a[href="/admin/users"]');
await page.waitForURL(/\/admin\/users$/);
await elsewhere.click('#open-console');
await elsewhere.waitForURL(/\/admin\/settings/);
await elsewhere.close();
await page.click('a[href="/admin/settings"]');

// 3. Import Users: three provider users with a role; Ada's directory address differs in case.
log('import three users with a role');
await page.click('#import-users');
await page.waitForURL(/\/admin\/import/);
for (const email of ['Ada@Contoso.Example', 'alan@contoso.example', 'katherine@contoso.example']) {
  await page.locator('#directory tr', { hasText: email }).locator('input[type=checkbox]').check();
}
await page.getByLabel('Field Technician').check();
await shot('5-import');
await fitsPhone('5-import-phone');
await page.click('#import');
await page.locator('#import-results').waitFor();
const results = await page.locator('#import-results').innerText();
assert.match(results, /Ada@Contoso\.Example: associated/);
assert.match(results, /alan@contoso\.example: created/);
assert.match(results, /katherine@contoso\.example: created/);
await shot('6-imported');
let users = await api(token, '/users');
const byEmail = (e) => users.find((u) => u.email === e);
assert.equal(byEmail('ada@contoso.example').id, 'u1', 'the existing Ada, matched by email');
for (const e of ['ada@contoso.example', 'alan@contoso.example', 'katherine@contoso.example']) {
  // Ada was a Sales Manager already: the import adds its role to hers.
  const before = e === 'ada@contoso.example' ? ['Field Technician', 'Sales Manager'] : ['Field Technician'];
  assert.deepEqual(byEmail(e).roles, before, e);
  assert.ok(byEmail(e).domain_name, `${e} has a Domain Name`);
}

// 4. Resources > Users: create a user, pick the provider user to associate, Save & Close.
log('assign a Domain Name by hand');
await page.click('a[href="/admin/users"]');
await page.fill('#new-name', 'Dorothy Vaughan');
await page.fill('#new-email', 'd.vaughan@contoso.example');
await page.click('#create-user');
await page.waitForURL(/\/admin\/users\/u\d+/);
await page.selectOption('#domain_name', { label: 'Dorothy Vaughan — dorothy@contoso.example' });
await page.getByLabel('Salesperson').check();
await shot('7-user');
await page.click('#save');
await page.waitForURL(/\/admin\/users$/);
const dorothyRow = page.locator('#users tr[data-email="d.vaughan@contoso.example"]');
assert.match(await dorothyRow.innerText(), /Linked/);
users = await api(token, '/users');
assert.match(byEmail('d.vaughan@contoso.example').domain_name, /\/idp\|dev-/);

// 5. Disable a user.
log('disable a user');
await page.locator('#users tr[data-email="katherine@contoso.example"] a').click();
await page.uncheck('#enabled');
await page.click('#save');
await page.waitForURL(/\/admin\/users$/);
assert.match(await page.locator('#users tr[data-email="katherine@contoso.example"]').innerText(), /Disabled/);
await shot('8-users');
await fitsPhone('8-users-phone');
users = await api(token, '/users');
assert.equal(byEmail('katherine@contoso.example').enabled, false);

// 5b. A business unit: Alan works in the Seattle field office (new users start at Headquarters,
// which owns no records), so his device gets that office's accounts and contacts.
log('move a user to a business unit');
await page.locator('#users tr[data-email="alan@contoso.example"] a').click();
await page.fill('#business_unit', 'Seattle Field Office');
await page.click('#save');
await page.waitForURL(/\/admin\/users$/);
assert.match(await page.locator('#users tr[data-email="alan@contoso.example"]').innerText(), /Seattle Field Office/);
users = await api(token, '/users');
assert.equal(byEmail('alan@contoso.example').business_unit, 'Seattle Field Office');

// 6. A device signs in as an imported user and syncs; password sign-in is refused.
log('a device of an imported user syncs; credentials mode is refused');
const alanDir = `${WORK}/alan`;
assert.equal(harness(alanDir, ['setup', '--org', ORG, '--user-mode', 'oauth'], 'password1\npassword1\n').status, 0);
const synced = harness(alanDir, ['sync', '--dev-login', 'alan@contoso.example']);
assert.equal(synced.status, 0, synced.stderr);
assert.ok(JSON.parse(synced.stdout.trim().split('\n').pop()).records_downloaded > 0);
const graceDir = `${WORK}/grace`;
harness(graceDir, ['setup', '--org', ORG, '--user-mode', 'credentials'], 'password1\npassword1\n');
const refused = harness(graceDir, ['sync', '--username', 'grace@contoso.example'], 'password1\ngrace-credentials\n');
assert.equal(refused.status, 1);
assert.equal(JSON.parse(refused.stderr).error.kind, 'UserModeNotAllowed');

// 6b. Settings > Schema and Resources > Roles: add a field (a bad one is refused with the reason),
// set a sync filter, widen a role; Alan's next Synchronize brings what entered his scope.
log('schema: add a field, a sync filter; roles: widen a privilege');
await page.click('a[href="/admin/schema"]');
await page.fill('#spec-contact', 'mobile');
await page.locator('#entity-contact').getByRole('button', { name: 'Add field' }).click();
await page.getByRole('alert').waitFor();
assert.match(await page.getByRole('alert').innerText(), /is not name:type/);
await page.fill('#spec-contact', 'mobile:text:searchable');
await page.locator('#entity-contact').getByRole('button', { name: 'Add field' }).click();
await page.waitForURL(/\/admin\/schema$/);
assert.match(await page.getByRole('status').innerText(), /Added contact\.mobile/);
// Sorted lists: index the new field, and stop indexing it again.
await page.getByRole('button', { name: 'Index contact.mobile for sorted lists' }).click();
await page.waitForURL(/\/admin\/schema$/);
assert.match(await page.getByRole('status').innerText(), /contact\.mobile is sortable/);
assert.ok((await api(token, '/schema')).entities.find((e) => e.name === 'contact').fields.some((f) => f.name === 'mobile' && f.sortable));
await page.getByRole('button', { name: 'Stop indexing contact.mobile for sorted lists' }).click();
await page.waitForURL(/\/admin\/schema$/);
assert.match(await page.getByRole('status').innerText(), /no longer sortable/);
const forgedSortable = await page.request.post(`${ORG}/admin/schema/sortable`, { form: { csrf: 'forged', entity: 'contact', field: 'email', on: 'true' } });
assert.equal(forgedSortable.status(), 403, 'an index change without the CSRF token is refused');
await page.fill('#filter-activity', '{"any": [{"field": "done", "equals": false}, {"field": "due_at", "within_days": 400}]}');
await page.locator('#entity-activity').getByRole('button', { name: 'Save filter' }).click();
await page.waitForURL(/\/admin\/schema$/);
// The attachment policy: an entity the schema lacks is refused with the reason, then stored.
await page.fill('#auto-entities', 'account, nosuch');
await page.getByRole('button', { name: 'Save attachment policy' }).click();
await page.getByRole('alert').waitFor();
assert.match(await page.getByRole('alert').innerText(), /no entity "nosuch"/);
await page.fill('#auto-max', '2000000');
await page.fill('#auto-entities', 'account, activity');
await page.getByRole('button', { name: 'Save attachment policy' }).click();
await page.waitForURL(/\/admin\/schema$/);
assert.match(await page.getByRole('status').innerText(), /Saved the attachment policy/);
const policy = await api(token, '/attachment-policy');
assert.equal(policy.auto_download_max_bytes, 2000000);
assert.deepEqual(policy.auto_download_entities, ['account', 'activity']);
const forgedPolicy = await page.request.post(`${ORG}/admin/schema/attachments`, { form: { csrf: 'forged', max_upload_bytes: '1', auto_download_max_bytes: '1', auto_download_entities: '', device_quota_bytes: '1' } });
assert.equal(forgedPolicy.status(), 403, 'a policy change without the CSRF token is refused');
await shot('8b-schema');
await phoneShot('8b-schema-phone');
const schema = await api(token, '/schema');
const contactDef = schema.entities.find((e) => e.name === 'contact');
assert.ok(contactDef.fields.some((f) => f.name === 'mobile' && f.searchable), 'the field is in the stored schema');
assert.equal(schema.entities.find((e) => e.name === 'activity').sync_filter.any.length, 2);
const forgedSchema = await page.request.post(`${ORG}/admin/schema/fields`, { form: { csrf: 'forged', entity: 'contact', spec: 'x:text' } });
assert.equal(forgedSchema.status(), 403, 'a schema change without the CSRF token is refused');
await page.click('a[href="/admin/roles"]');
await page.getByLabel('Field Technician: read activity').selectOption('organization');
await page.getByRole('button', { name: 'Save Field Technician' }).click();
await page.waitForURL(/\/admin\/roles$/);
await shot('8c-roles');
await phoneShot('8c-roles-phone');
const technician = (await api(token, '/roles')).find((r) => r.name === 'Field Technician');
assert.equal(technician.privileges.find((p) => p.entity === 'activity').read, 'organization');
const widened = harness(alanDir, ['sync', '--dev-login', 'alan@contoso.example']);
assert.equal(widened.status, 0, widened.stderr);
const widenedReport = JSON.parse(widened.stdout.trim().split('\n').pop());
assert.ok(widenedReport.records_downloaded > 0, 'the activities his role now reads arrive');
assert.equal(widenedReport.records_removed, 0);

// 7. Devices: wipe the device; it erases its vault at its next contact.
log('wipe a device');
await page.click('a[href="/admin/devices"]');
const row = page.locator('#devices tbody tr', { hasText: 'alan@contoso.example' });
await fitsPhone('9a-devices-phone');
await row.getByRole('link', { name: 'Wipe...' }).click();
// Wipe asks first, naming the device and its user.
assert.match(await page.locator('#confirm-question').innerText(), /Wipe .* of alan@contoso\.example\?/);
await shot('9a-confirm-wipe');
await page.click('#confirm-button');
await page.waitForURL(/\/admin\/devices/);
assert.match(await row.locator('.status').innerText(), /Wipe requested/);
assert.equal(await row.getByRole('button').count(), 0, 'a wiped device offers no further actions');
assert.match(await row.locator('.actions').innerText(), /No further actions/);
const wiped = harness(alanDir, ['sync', '--dev-login', 'alan@contoso.example']);
assert.equal(wiped.status, 1);
assert.equal(JSON.parse(wiped.stderr).error.kind, 'RemoteWiped');
await page.reload();
assert.match(await row.locator('.status').innerText(), /Wipe done/);
await shot('9-devices');
const devices = await api(token, '/devices');
assert.equal(devices.find((d) => d.user_email === 'alan@contoso.example').delivered_command, 'wipe');

// 8. Security.
log('CSRF, XSS, non-admin sessions, logout');
// Disconnect asks first, naming the provider; Cancel leaves it connected.
await page.click('a[href="/admin/settings"]');
await page.click('#disconnect');
assert.match(await page.locator('#confirm-question').innerText(), /Disconnect the organization from Built-in development provider \(http/);
await page.click('#cancel');
await page.waitForURL(/\/admin\/settings/);
assert.match(await page.locator('#connection-status').innerText(), /Connected to/);
const noToken = await page.request.post(`${ORG}/admin/settings/disconnect`, { form: { csrf: 'forged' } });
assert.equal(noToken.status(), 403, 'a POST without the session CSRF token is refused');
assert.match((await (await fetch(`${ORG}/.well-known/syncvault`)).json()).user_modes.join(), /^oauth$/);
await page.click('a[href="/admin/users"]');
await page.fill('#new-name', '<img src=x onerror="window.__xss=1">Mallory');
await page.fill('#new-email', 'mallory@contoso.example');
await page.click('#create-user');
await page.click('a[href="/admin/users"]');
assert.equal(await page.evaluate(() => window.__xss), undefined, 'markup in a name stays text');
assert.match(await page.locator('#users tr[data-email="mallory@contoso.example"]').innerText(), /<img src=x/);
const beforeLogout = await sessionCookie();
await page.click('header .logout button');
await page.waitForURL(/\/admin\/login/);
const replay = await browser.newContext();
await replay.addCookies([{ ...beforeLogout }]);
const replayPage = await replay.newPage();
await replayPage.goto(`${ORG}/admin/settings`);
assert.match(replayPage.url(), /\/admin\/login/, 'the old session is dead after sign-out');
// A provider user who is no administrator cannot sign in to the console.
await page.click('#provider-sign-in');
await providerLogin('ada@contoso.example');
await page.getByRole('alert').waitFor();
assert.match(await page.getByRole('alert').innerText(), /for System Administrators/);
assert.equal((await apiToken('ada@contoso.example')).status, 403);

await browser.close();
console.log(`browser test: all ${step} steps passed`);
