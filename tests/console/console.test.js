// End-to-end tests of the web console in Debian's Chromium: a real `cts serve` on a free port and a
// temporary data directory, an auditor with a console password made by `cts admin`, traces ingested
// through the API; then sign-in, filters, a trace's JSON, the CSV export against the API's answer,
// and the live tail; as the admin, a notification edited in full, a topic's subscriptions, and a tracker's
// delivery history (the object store is a closed port and cycles run every second, so its deliveries fail for
// real). Screenshots go to docs/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CTS = process.env.CTS_BIN || join(REPO, 'target', 'debug', 'cts');
const SCREENSHOTS = join(REPO, 'docs', 'screenshots');
const ACCESS_KEY = 'CONSOLETESTADMINKEY1';
const SECRET_KEY = 'console-test-secret-0123456789-abcdefgh';
const PROJECT_ID = '0123456789abcdef0123456789abcdef';
const DOMAIN_ID = 'fedcba9876543210fedcba9876543210';
const PASSWORD = 'correct horse battery';

let server; let dataDir; let base; let browser; let page; let admin; let topicUrn;

async function freePort() {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => { const { port } = probe.address(); probe.close(() => resolve(port)); });
  });
}

function ctsAdmin(args, env = {}) {
  return JSON.parse(execFileSync(CTS, ['admin', '--data-dir', dataDir, ...args], { env: { ...process.env, ...env } }).toString());
}

// An API session of the admin (sign-in by access key): ingests and the reference answers.
async function apiSession() {
  const response = await fetch(`${base}/console/api/session`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ access_key: ACCESS_KEY, secret_key: SECRET_KEY }),
  });
  assert.equal(response.status, 200);
  const session = await response.json();
  const cookie = response.headers.get('set-cookie').split(';')[0];
  return {
    async call(method, path, body) {
      const answer = await fetch(base + path, {
        method, body: body && JSON.stringify(body),
        headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': session.csrf_token },
      });
      const text = await answer.text();
      assert.ok(answer.ok, `${method} ${path}: ${answer.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
  };
}

async function ingest(traces) {
  const answer = await admin.call('POST', `/v3/${PROJECT_ID}/traces`, { traces });
  assert.equal(answer.rejected.length, 0, JSON.stringify(answer.rejected));
  return answer.accepted.map((a) => a.trace_id);
}

function trace(i, time) {
  return {
    trace_name: i % 2 ? 'deleteOrder' : 'createOrder', service_type: 'marketplace', resource_type: 'Order',
    resource_id: `order-${i}`, resource_name: i % 5 === 0 ? `=HYPERLINK("x","order ${i}")` : `order ${i}`,
    time, user: { name: i % 3 ? 'alice' : 'bob' }, code: i % 7 === 0 ? '403' : '200', source_ip: '203.0.113.9',
  };
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cts-console-'));
  const port = await freePort();
  const closedPort = await freePort();   // nothing listens: the object store is unreachable
  base = `http://127.0.0.1:${port}`;
  const log = openSync(join(dataDir, 'serve.log'), 'w');
  server = spawn(CTS, ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
    env: {
      ...process.env, CTS_ADMIN_ACCESS_KEY: ACCESS_KEY, CTS_ADMIN_SECRET_KEY: SECRET_KEY, CTS_PROJECT_ID: PROJECT_ID, CTS_DOMAIN_ID: DOMAIN_ID,
      CTS_OBS_ENDPOINT: `http://127.0.0.1:${closedPort}`, CTS_OBS_ACCESS_KEY: 'unused', CTS_OBS_SECRET_KEY: 'unused',
      CTS_OBS_PATH_STYLE: 'true', CTS_TRANSFER_INTERVAL: '1s',
    },
    stdio: ['ignore', log, log],
  });
  for (let attempt = 0; ; attempt += 1) {
    try { if ((await fetch(`${base}/health`)).ok) break; } catch (_) { /* not up yet */ }
    if (attempt > 300) throw new Error(`cts serve did not start: ${readFileSync(join(dataDir, 'serve.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  ctsAdmin(['user', 'create', '--domain', DOMAIN_ID, '--role', 'auditor', 'carol']);
  ctsAdmin(['user', 'set-password', 'carol'], { CTS_CONSOLE_PASSWORD: PASSWORD });
  admin = await apiSession();
  const now = Date.now();
  await ingest(Array.from({ length: 60 }, (_, i) => trace(i, now - 50 * 60_000 + i * 45_000)));
  await admin.call('POST', `/v3/${PROJECT_ID}/tracker`, {
    tracker_type: 'data', tracker_name: 'orders-bucket', data_bucket: { data_bucket_name: 'orders', data_event: ['WRITE'] },
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
  // A fresh profile each run (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'cts-chromium-')), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
  });
  page = await browser.newPage();
  page.on('pageerror', (error) => { throw error; });
});

after(async () => {
  if (browser) await browser.close();
  // Stopped before its data directory goes (it seals the memtable on the way out).
  if (server && server.exitCode === null) await new Promise((resolve) => { server.once('exit', resolve); server.kill('SIGTERM'); });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function signIn() {
  await page.goto(`${base}/console`);
  await page.getByLabel('User name', { exact: true }).fill('carol');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-name').filter({ hasText: 'carol (auditor)' }).waitFor();
  await page.locator('#traces tbody tr.trace').first().waitFor();
}

async function filterBy(values) {
  for (const [label, value] of Object.entries(values)) await page.getByLabel(label, { exact: true }).fill(value);
  await page.getByRole('button', { name: 'Search' }).click();
}

// RFC 4180: CRLF rows, quoted fields with doubled quotes.
function parseCsv(text) {
  const rows = []; let row = []; let cell = ''; let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 1; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell); rows.push(row); row = []; cell = ''; i += 1;
    } else cell += c;
  }
  return rows;
}

// The ids of the traces ListTraces answers for `filter`, all pages.
async function listedIds(filter) {
  const ids = []; let next = '';
  for (;;) {
    const query = new URLSearchParams({ ...filter, limit: '200', ...(next ? { next } : {}) });
    const answer = await admin.call('GET', `/v3/${PROJECT_ID}/traces?${query}`);
    ids.push(...answer.traces.map((t) => t.trace_id));
    if (!answer.meta_data.marker) return ids;
    next = answer.meta_data.marker;
  }
}

test('a wrong password is refused and the right one signs in', async () => {
  await page.goto(`${base}/console`);
  await page.getByLabel('User name', { exact: true }).fill('carol');
  await page.getByLabel('Password', { exact: true }).fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#sign-in-error').filter({ hasText: 'CTS.0002' }).waitFor();
  await signIn();
  const rows = await page.locator('#traces tbody tr.trace').count();
  assert.equal(rows, 50, 'the first page of the last hour');
  await page.locator('#timeline svg rect').first().waitFor();
  await page.screenshot({ path: join(SCREENSHOTS, 'traces.png'), fullPage: true });
});

test('filters by trace name and user, and shows a trace as JSON', async () => {
  await filterBy({ 'Trace name': 'createOrder', User: 'alice' });
  const expected = await listedIds({ trace_name: 'createOrder', user: 'alice', from: String(Date.now() - 3600e3) });
  await page.waitForFunction((n) => document.querySelectorAll('#traces tbody tr.trace').length === n, expected.length);
  const shown = await page.locator('#traces tbody tr.trace').evaluateAll((rows) => rows.map((r) => r.dataset.traceId));
  assert.deepEqual(shown, expected);
  const names = await page.locator('#traces tbody td.col-trace_name').allTextContents();
  const users = await page.locator('#traces tbody td.col-user').allTextContents();
  assert.ok(names.every((n) => n === 'createOrder') && users.every((u) => u === 'alice'), `${names} ${users}`);

  await page.locator('#traces tbody tr.trace button.expand').first().click();
  await page.getByRole('button', { name: 'View trace' }).first().click();
  const json = JSON.parse(await page.locator('#json-body').textContent());
  assert.equal(json.trace_id, expected[0]);
  assert.equal(json.user.name, 'alice');
  await page.screenshot({ path: join(SCREENSHOTS, 'trace-json.png') });
  await page.getByRole('button', { name: 'Close' }).click();
});

test('the CSV export of the current filter equals the API answer', async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
  const csv = readFileSync(await download.path(), 'utf8');
  const [header, ...rows] = parseCsv(csv);
  const idColumn = header.indexOf('trace_id');
  const exported = rows.map((row) => row[idColumn]);
  const expected = await listedIds({ trace_name: 'createOrder', user: 'alice', from: String(Date.now() - 3600e3) });
  assert.deepEqual(exported, expected);
  const names = rows.map((row) => row[header.indexOf('resource_name')]);
  assert.ok(names.some((name) => name.startsWith("'=HYPERLINK(\"x\",")), 'formula cells neutralised');
  assert.ok(names.every((name) => !name.startsWith('=')), 'no cell starts a formula');
});

test('the live tail shows a trace ingested while tailing', async () => {
  await page.getByLabel('Live tail').check();
  await page.locator('#tail-status').filter({ hasText: 'Tailing' }).waitFor();
  const [id] = await ingest([{ ...trace(2, Date.now()), resource_name: 'tailed order' }]);   // createOrder by alice
  await page.locator(`#traces tr.trace[data-trace-id="${id}"]`).waitFor({ timeout: 10_000 });
  const other = await ingest([{ ...trace(1, Date.now()) }]);   // deleteOrder: filtered out
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await page.locator(`#traces tr[data-trace-id="${other[0]}"]`).count(), 0);
  await page.getByLabel('Live tail').uncheck();
});

test('trackers and integrity pages; a trace verifies against its inclusion proof', async () => {
  await page.getByRole('link', { name: 'Trackers' }).click();
  await page.locator('#trackers tbody tr').filter({ hasText: 'orders-bucket' }).waitFor();
  await page.screenshot({ path: join(SCREENSHOTS, 'trackers.png'), fullPage: true });

  const [id] = await listedIds({ trace_name: 'deleteOrder', from: String(Date.now() - 3600e3) });
  await new Promise((r) => setTimeout(r, 1500));   // the next checkpoint (every second) covers it
  await page.getByRole('link', { name: 'Integrity' }).click();
  await page.locator('#tree-size').waitFor();
  await page.getByLabel('Trace ID').fill(id);
  await page.getByRole('button', { name: 'Verify in the browser' }).click();
  await page.locator('#verify-result .ok').waitFor();
  await page.screenshot({ path: join(SCREENSHOTS, 'integrity.png'), fullPage: true });
});

test('phone width keeps the traces page usable', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('link', { name: 'Traces' }).click();
  await page.locator('#traces tbody tr.trace').first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no horizontal page scroll at phone width (${overflow}px)`);
  await page.screenshot({ path: join(SCREENSHOTS, 'traces-phone.png'), fullPage: true });
});

async function signInAsAdmin() {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#sign-in-form').waitFor();
  await page.locator('input[name=method][value=key]').check();
  await page.locator('#access-key').fill(ACCESS_KEY);
  await page.locator('#secret-key').fill(SECRET_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-name').filter({ hasText: '(admin)' }).waitFor();
}

async function notificationNamed(name) {
  const { notifications } = await admin.call('GET', `/v3/${PROJECT_ID}/notifications/smn?notification_name=${name}`);
  return notifications[0];
}

test('an admin edits a key event notification in full, creates and deletes one; the API answers each change', async () => {
  await signInAsAdmin();
  ({ topic_urn: topicUrn } = await admin.call('POST', `/v2/${PROJECT_ID}/notifications/topics`, { name: 'security-alerts' }));
  await admin.call('POST', `/v3/${PROJECT_ID}/notifications`, { notification_name: 'order_changes', operation_type: 'complete', topic_id: topicUrn });
  await page.getByRole('link', { name: 'Notifications' }).click();
  await page.getByRole('button', { name: 'Edit order_changes' }).click();
  await page.getByLabel('Operations', { exact: true }).selectOption('customized');
  await page.getByRole('button', { name: 'Add operation' }).click();
  const operation = page.locator('.repeated.operation').last();
  await operation.getByLabel('Service type', { exact: true }).fill('marketplace');
  await operation.getByLabel('Resource type', { exact: true }).fill('Order');
  await operation.getByLabel('Trace names', { exact: true }).fill('createOrder, deleteOrder');
  await page.getByRole('button', { name: 'Add user group' }).click();
  const group = page.locator('.repeated.user-group').last();
  await group.getByLabel('User group', { exact: true }).fill('ops');
  await group.getByLabel('Users', { exact: true }).fill('alice, bob');
  await page.getByLabel('Only traces matching the rules').check();
  await page.getByLabel('Combine rules with').selectOption('OR');
  await page.getByLabel(/^Rules, one per line/).fill('code = 403\ntrace_rating=incident');
  await page.getByLabel('Status', { exact: true }).selectOption('disabled');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#notifications tr[data-notification="order_changes"] td.filter')
    .filter({ hasText: 'code = 403 OR trace_rating = incident' }).waitFor();
  const edited = await notificationNamed('order_changes');
  assert.deepEqual(
    { ...edited, notification_id: undefined, create_time: undefined },
    {
      notification_name: 'order_changes', operation_type: 'customized', status: 'disabled', topic_id: topicUrn,
      operations: [{ service_type: 'marketplace', resource_type: 'Order', trace_names: ['createOrder', 'deleteOrder'] }],
      notify_user_list: [{ user_group: 'ops', user_list: ['alice', 'bob'] }],
      filter: { condition: 'OR', is_support_filter: true, rule: ['code = 403', 'trace_rating = incident'] },
      notification_type: 'smn', project_id: PROJECT_ID, notification_id: undefined, create_time: undefined,
    },
  );
  // Editing again starts from what is stored: only the rule changes.
  await page.getByRole('button', { name: 'Edit order_changes' }).click();
  assert.equal(await page.getByLabel(/^Rules, one per line/).inputValue(), 'code = 403\ntrace_rating = incident');
  await page.getByLabel(/^Rules, one per line/).fill('code != 200');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#notifications tr[data-notification="order_changes"] td.filter').filter({ hasText: 'code != 200' }).waitFor();
  const again = await notificationNamed('order_changes');
  assert.deepEqual(again.filter.rule, ['code != 200']);
  assert.deepEqual([again.operations, again.notify_user_list, again.status], [edited.operations, edited.notify_user_list, 'disabled']);

  await page.getByLabel('Notification name').fill('temporary_alert');
  await page.getByLabel('Topic', { exact: true }).selectOption({ label: 'security-alerts' });
  await page.getByRole('button', { name: 'Create notification' }).click();
  await page.locator('#notifications tr[data-notification="temporary_alert"]').waitFor();
  assert.equal((await notificationNamed('temporary_alert')).status, 'enabled');
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Delete temporary_alert' }).click();
  await page.locator('#notifications tr[data-notification="temporary_alert"]').waitFor({ state: 'detached' });
  assert.equal(await notificationNamed('temporary_alert'), undefined);
});

test("a topic's subscriptions: add one, see it in the API, delete it", async () => {
  const subscriptions = async () => (await admin.call('GET',
    `/v2/${PROJECT_ID}/notifications/topics/${encodeURIComponent(topicUrn)}/subscriptions`)).subscriptions;
  await page.getByRole('button', { name: 'Subscriptions of security-alerts' }).click();
  const panel = page.locator('tr.subscriptions:not([hidden])');
  await panel.getByLabel('Protocol').selectOption('https');
  await panel.getByLabel('Endpoint').fill('https://hooks.example.com/cts');
  await panel.getByLabel('Remark').fill('on-call pager');
  await panel.getByRole('button', { name: 'Add subscription' }).click();
  await panel.locator('tr.subscription').filter({ hasText: 'https://hooks.example.com/cts' }).waitFor();
  await panel.locator('.secret code').waitFor();
  assert.deepEqual((await subscriptions()).map((s) => [s.protocol, s.endpoint, s.remark]),
    [['https', 'https://hooks.example.com/cts', 'on-call pager']]);
  await page.screenshot({ path: join(SCREENSHOTS, 'notifications.png'), fullPage: true });
  await panel.getByRole('button', { name: 'Delete subscription https://hooks.example.com/cts' }).click();
  await panel.locator('tr.subscription').waitFor({ state: 'detached' });
  assert.deepEqual(await subscriptions(), []);
});

test("a tracker's delivery history shows its failed deliveries (unreachable object store)", async () => {
  await admin.call('POST', `/v3/${PROJECT_ID}/tracker`, {
    tracker_type: 'data', tracker_name: 'offsite-copy', data_bucket: { data_bucket_name: 'orders', data_event: ['WRITE'] },
    obs_info: { bucket_name: 'cts-offsite-copy', file_prefix_name: 'audit' },
  });
  let deliveries = [];
  for (let attempt = 0; attempt < 100 && deliveries.length < 3; attempt += 1) {
    await new Promise((r) => setTimeout(r, 100));
    ({ deliveries } = await admin.call('GET', `/v3/${PROJECT_ID}/trackers/offsite-copy/deliveries?limit=5`));
  }
  assert.equal(deliveries.length, 3, 'three delivery cycles (one a second) within 10 s');
  assert.deepEqual([deliveries[0].outcome, deliveries[0].error.detail], ['failed', 'bucketPolicyError']);

  await page.getByRole('link', { name: 'Trackers' }).click();
  const toggle = page.getByRole('button', { name: 'Delivery history of offsite-copy' });
  await toggle.focus();
  await page.keyboard.press('Enter');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  const newest = page.locator('#deliveries-offsite-copy tbody tr.delivery.failed').first();
  await newest.waitFor();
  assert.ok(await page.locator('#deliveries-offsite-copy tbody tr.delivery').count() >= 3);
  assert.equal(await page.locator('#trackers').getByText('false', { exact: true }).count(), 0, 'no stray text');
  assert.match(await newest.locator('td.error-detail').textContent(), /^bucketPolicyError: /);
  await page.locator('#trackers tr[data-tracker="offsite-copy"]').filter({ hasText: 'bucketPolicyError' }).waitFor();
  await page.screenshot({ path: join(SCREENSHOTS, 'tracker-history.png'), fullPage: true });
  await page.getByRole('button', { name: 'Delivery history of orders-bucket' }).click();
  await page.locator('#deliveries-orders-bucket tbody td.muted').filter({ hasText: 'None' }).waitFor();
});

test('phone width keeps the trackers and notifications pages usable', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [link, ready] of [['Notifications', '#notifications'], ['Trackers', '#deliveries-offsite-copy, #trackers']]) {
    await page.getByRole('link', { name: link }).click();
    await page.locator(ready).first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no horizontal page scroll on ${link} at phone width (${overflow}px)`);
  }
  await page.getByRole('button', { name: 'Delivery history of offsite-copy' }).click();
  await page.locator('#deliveries-offsite-copy tbody tr.delivery').first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no horizontal page scroll with the history open (${overflow}px)`);
});

test('free text, a prefix and ignore case find what the API finds', async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  const now = Date.now();
  const refunds = await ingest([0, 1, 2, 3].map((i) => ({
    ...trace(i, now - 1000 * i), resource_name: i % 2 ? `REFUND-${i}` : `refund-${i}`,
    request: JSON.stringify({ reason: i === 3 ? 'wrong size' : 'Gift card declined' }),
  })));
  await page.getByRole('link', { name: 'Traces' }).click();
  await page.getByRole('button', { name: 'Reset' }).click();
  await page.getByLabel('Ignore case').check();
  await filterBy({ 'Text in request, response or message': '"gift card"', 'Resource name': 'refund*' });
  const expected = await listedIds({ q: '"gift card"', resource_name: 'refund*', ignore_case: 'true', from: String(now - 3600e3) });
  assert.deepEqual(expected, refunds.slice(0, 3));
  // Polled from here: the page's CSP forbids the eval Playwright's in-page polling needs.
  let shown = [];
  for (let attempt = 0; attempt < 100 && JSON.stringify(shown) !== JSON.stringify(expected); attempt += 1) {
    await new Promise((r) => setTimeout(r, 100));
    shown = await page.locator('#traces tbody tr.trace').evaluateAll((rows) => rows.map((r) => r.dataset.traceId));
  }
  assert.deepEqual(shown, expected);
  await page.screenshot({ path: join(SCREENSHOTS, 'search.png') });
});
