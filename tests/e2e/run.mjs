// run.mjs: the review app in Chromium (playwright-core driving Debian's
// /usr/bin/chromium), against the server tests/e2e/run.sh started.  Each
// test drives the app as an analyst would (names of buttons and fields are
// the contract of docs/review-app.md), checks the result through the API,
// saves a screenshot, and runs axe-core on the page (no serious or critical
// violation).  Exit 0 all passed, 1 a failure, 77 Chromium cannot start.
import {chromium} from 'playwright-core';
import {readFileSync} from 'node:fs';
import {execFileSync} from 'node:child_process';
import {createRequire} from 'node:module';
import path from 'node:path';

const env = process.env;
const B = env.FM_E2E_BASE, OUT = env.FM_E2E_OUT;
const TOK = {ana: env.FM_E2E_ANA, bob: env.FM_E2E_BOB, reader: env.FM_E2E_READER, admin: env.FM_E2E_ADMIN};
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const TIMEOUT = 15000;

let browser;
try {
  browser = await chromium.launch({executablePath: env.FM_E2E_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'], timeout: 60000});
} catch (e) {
  console.log(`SKIP: Chromium cannot start: ${e.message.split('\n')[0]}`);
  process.exit(77);
}

// ---- helpers ----------------------------------------------------------------
async function apiGet(p, tok = TOK.ana) {
  const r = await fetch(B + p, {headers: {Authorization: `Bearer ${tok}`}});
  if (!r.ok) throw new Error(`GET ${p}: ${r.status} ${await r.text()}`);
  return r.json();
}
const view = (id) => apiGet(`/v1/review/bloomberg/${encodeURIComponent(id)}`);
function check(cond, what) { if (!cond) throw new Error(`check failed: ${what}`); }
async function until(fn, what, ms = TIMEOUT) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => false);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`gave up after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const problems = [];
async function newPage(who, viewport = {width: 1280, height: 800}) {
  const ctx = await browser.newContext({viewport, acceptDownloads: true});
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  if (who) await signIn(page, TOK[who]);
  return page;
}
async function signIn(page, tok) {
  await page.goto(`${B}/ui/`);
  await page.getByLabel('API token').fill(tok);
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.getByRole('heading', {name: 'Review queue'}).waitFor();
}
const fieldId = (page) => decodeURIComponent(new URL(page.url()).hash.split('/').pop());
async function openField(page, id) {
  await page.goto(`${B}/ui/#/field/bloomberg/${encodeURIComponent(id)}`);
  await page.getByRole('heading', {level: 1, name: id, exact: true}).waitFor();
}
async function shot(page, name) { await page.screenshot({path: path.join(OUT, `${name}.png`)}); }
async function axe(page, name) {
  const res = await page.evaluate(`${axeSource}; axe.run(document, {resultTypes: ['violations']})`);
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(!bad.length, `axe on ${name}: ${bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join('; ')}`).join(' | ')}`);
}
// The queue as the API lists it (first page).
const queueIds = async (n = 25) => (await apiGet(`/v1/review/queue?limit=${n}`)).items.map((i) => i.field.id);

// ---- tests -------------------------------------------------------------------
const tests = [];
const test = (name, fn) => tests.push({name, fn});

test('sign in: a wrong token says so, a right one opens the queue', async () => {
  const page = await newPage(null);
  await page.goto(`${B}/ui/`);
  await axe(page, 'sign-in');
  await page.getByLabel('API token').fill('fm_not-a-token');
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.getByText('That token was not accepted').waitFor();
  await shot(page, 'signin-wrong-token');
  await page.getByLabel('API token').fill(TOK.ana);
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.getByRole('heading', {name: 'Review queue'}).waitFor();
  check(await page.evaluate(() => sessionStorage.getItem('fieldmatch.token')) === TOK.ana, 'token kept for the tab');
  check(!page.url().includes(TOK.ana.slice(3, 20)), 'no token in the URL');
  await page.context().close();
});

test('queue order matches the API', async () => {
  const page = await newPage('ana');
  const want = await queueIds();
  const got = await page.locator('table.queue tbody tr td:first-child a').allTextContents();
  check(JSON.stringify(got) === JSON.stringify(want), `queue order: ${got.slice(0, 5)} vs ${want.slice(0, 5)}`);
  const total = (await apiGet('/v1/review/queue?limit=1')).total;
  check((await page.locator('#queue-count').textContent()).startsWith(`${total} field(s) waiting`), 'count shown');
  await shot(page, 'queue');
  await axe(page, 'queue');
  // filters: a search narrows it to one field
  await page.getByLabel('Search id or name').fill(want[1]);
  await page.getByRole('button', {name: 'Filter'}).click();
  await until(async () => (await page.locator('table.queue tbody tr td:first-child a').allTextContents()).includes(want[1]), 'the search result');
  await page.context().close();
});

let decided = [];
test('accept by click, then the next field opens', async () => {
  const page = await newPage('ana');
  const [first] = await queueIds(1);
  await page.getByRole('link', {name: first, exact: true}).click();
  await page.getByRole('heading', {level: 1, name: first, exact: true}).waitFor();
  const v = await view(first);
  const ref = v.candidates[0].ref.id;
  // each candidate shows the calibrated confidence (from /v1/match) as a bar
  await page.getByRole('img', {name: /^confidence \d\.\d{3}$/}).first().waitFor();
  await shot(page, 'field');
  await axe(page, 'field');
  await page.getByRole('button', {name: `Accept ${ref}`, exact: true}).click();
  await until(async () => fieldId(page) !== first, 'the next field to open');
  check((await view(first)).accepted.ref.id === ref, 'accepted through the API');
  decided.push(first);
  await page.context().close();
});

test('accept by key (j on the queue, then 1)', async () => {
  const page = await newPage('ana');
  const [id] = await queueIds(1);
  await page.keyboard.press('j');
  await page.getByRole('heading', {level: 1, name: id, exact: true}).waitFor();
  const ref = (await view(id)).candidates[0].ref.id;
  await page.keyboard.press('1');
  await until(async () => (await view(id)).accepted?.ref.id === ref, 'the key decision');
  await until(async () => fieldId(page) !== id, 'the next field');
  decided.push(id);
  await page.context().close();
});

test('reject (button) and x', async () => {
  const page = await newPage('ana');
  const [id] = await queueIds(1);
  await openField(page, id);
  const v = await view(id);
  const ref = v.candidates[0].ref.id;
  await page.getByRole('button', {name: `Reject ${ref}`, exact: true}).click();
  await until(async () => (await view(id)).candidates[0].status === 'rejected', 'the rejection');
  const id2 = await until(async () => fieldId(page) !== id && fieldId(page), 'the next field');
  await page.getByRole('heading', {level: 1, name: id2, exact: true}).waitFor();
  await page.getByRole('button', {name: 'No equivalent'}).waitFor();
  if ((await view(id2)).candidates.length) {
    await page.keyboard.press('x');
    await until(async () => (await view(id2)).candidates[0].status === 'rejected', 'the rejection by x');
    await until(async () => fieldId(page) !== id2, 'the next field after x');
  }
  await page.context().close();
});

let picked;
test('pick through the search, then undo', async () => {
  const page = await newPage('ana');
  const [id] = await queueIds(1);
  await openField(page, id);
  const v = await view(id);
  const ref = v.candidates[v.candidates.length - 1].ref.id; // a reference to search for
  await page.keyboard.press('/');
  check(await page.evaluate(() => document.activeElement.id) === 'pick', '/ focuses the picker');
  await page.keyboard.type(ref);
  await page.getByRole('button', {name: `Pick ${ref}`, exact: true}).click();
  await until(async () => (await view(id)).accepted?.ref.id === ref, 'the pick');
  check((await apiGet(`/v1/review/bloomberg/${id}/history`)).history.some((r) => r.action === 'pick'), 'history: pick');
  picked = id;
  // undo: a new decision that restores "no decision" (the pick is rejected)
  await until(async () => fieldId(page) !== id, 'the next field');
  // the keys work once the next field's page is rendered (its handler is
  // attached after the field is read): wait for its heading, not the URL
  await page.getByRole('heading', {level: 1, name: fieldId(page), exact: true}).waitFor();
  await page.keyboard.press('u');
  await until(async () => (await view(id)).accepted === null, 'the undo');
  const h = (await apiGet(`/v1/review/bloomberg/${id}/history`)).history;
  check(h.some((r) => r.action === 'pick') && h[h.length - 1].action === 'reject', 'undo is recorded, history kept');
  await page.getByRole('heading', {level: 1, name: id, exact: true}).waitFor();
  await shot(page, 'undo');
  await page.context().close();
});

test('no equivalent (button and 0), comment, history', async () => {
  const page = await newPage('ana');
  const [a] = await queueIds(1);
  await openField(page, a);
  await page.getByRole('button', {name: 'No equivalent', exact: true}).click();
  await until(async () => (await view(a)).no_equivalent?.status === 'no_equivalent', 'no_equivalent by click');
  await until(async () => fieldId(page) !== a, 'the next field');
  const b = fieldId(page);
  await page.getByRole('heading', {level: 1, name: b, exact: true}).waitFor();
  await page.getByRole('button', {name: 'No equivalent', exact: true}).waitFor();
  await page.keyboard.press('0');
  await until(async () => (await view(b)).no_equivalent !== null, 'no_equivalent by key');
  await until(async () => fieldId(page) !== b, 'the next field after the key');
  await openField(page, a);
  await page.getByLabel('Comment (kept with the decision)').fill('checked both RDM and fundamentals & <none>');
  await page.getByRole('button', {name: 'Add comment to the current decision'}).click();
  await until(async () => (await view(a)).no_equivalent.comment.includes('& <none>'), 'the comment');
  await page.getByRole('cell', {name: 'checked both RDM and fundamentals & <none>'}).first().waitFor();
  const rows = await page.locator('section.history tbody tr').allTextContents();
  check(rows.some((r) => r.includes('no_equivalent') && r.includes('ana')), 'history shows the decision');
  check(rows.some((r) => r.includes('comment')), 'history shows the comment');
  await shot(page, 'history');
  await page.context().close();
});

test('a reader cannot decide', async () => {
  const page = await newPage('reader');
  const [id] = await queueIds(1);
  await openField(page, id);
  await page.locator('#reader-note').waitFor();
  check(await page.getByRole('button', {name: /^Accept /}).count() === 0, 'no accept buttons');
  check(await page.getByRole('button', {name: 'No equivalent'}).count() === 0, 'no no-equivalent button');
  const before = JSON.stringify(await view(id));
  await page.keyboard.press('1');
  await page.keyboard.press('0');
  await page.waitForTimeout(300); // nothing to wait on: nothing may happen
  check(JSON.stringify(await view(id)) === before, 'keys decide nothing');
  await shot(page, 'reader');
  await page.context().close();
});

test('two analysts: the 409 flow', async () => {
  const [id] = await queueIds(1);
  const ana = await newPage('ana'), bob = await newPage('bob');
  await openField(ana, id);
  await openField(bob, id);
  const c = (await view(id)).candidates;
  await ana.getByRole('button', {name: `Accept ${c[0].ref.id}`, exact: true}).click();
  await until(async () => (await view(id)).accepted?.ref.id === c[0].ref.id, "ana's accept");
  await bob.getByRole('button', {name: `Accept ${c[1].ref.id}`, exact: true}).click();
  await bob.getByText('Someone else decided on this field meanwhile').waitFor();
  check((await bob.locator('#conflict').textContent()).includes(`accepted: ${c[0].ref.id}`), 'the conflict says what changed');
  check((await view(id)).accepted.ref.id === c[0].ref.id, 'nothing overwritten');
  await shot(bob, 'conflict');
  await axe(bob, 'conflict');
  await bob.getByRole('button', {name: `Accept ${c[1].ref.id}`, exact: true}).click();
  await until(async () => (await view(id)).accepted?.ref.id === c[1].ref.id, "bob's second decision");
  await ana.context().close();
  await bob.context().close();
});

test('bulk accept of three', async () => {
  const page = await newPage('ana');
  await page.getByRole('link', {name: 'Bulk review'}).click();
  await page.getByRole('heading', {name: 'Bulk review'}).waitFor();
  const rows = await apiGet('/v1/mappings?status=proposed&limit=1000');
  const top = rows.mappings.sort((a, b) => b.score - a.score).slice(0, 3);
  for (const m of top) await page.getByRole('checkbox', {name: `Select ${m.query_id} → ${m.ref_id}`}).check();
  await page.getByRole('button', {name: 'Accept selected (3)'}).click();
  await page.getByRole('dialog').getByRole('button', {name: 'Confirm'}).click();
  await until(async () => (await Promise.all(top.map((m) => view(m.query_id)))).every((v, i) => v.accepted?.ref.id === top[i].ref_id), 'the bulk accept');
  await page.getByRole('button', {name: 'Accept selected (0)'}).waitFor();
  await shot(page, 'bulk');
  await axe(page, 'bulk');
  await page.context().close();
});

test('dashboard: an export downloads and matches fieldmatch export', async () => {
  const page = await newPage('admin');
  await page.getByRole('link', {name: 'Dashboard'}).click();
  await page.getByRole('heading', {name: 'Progress per dictionary'}).waitFor();
  await page.locator('svg.chart').waitFor();
  await shot(page, 'dashboard');
  await axe(page, 'dashboard');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', {name: 'Download CSV'}).click()]);
  const file = path.join(OUT, 'export.csv');
  await dl.saveAs(file);
  const cli = execFileSync(env.FM_E2E_FIELDMATCH, ['export', '--db', env.FM_E2E_DB, '--status', 'all', '--format', 'csv'], {encoding: 'utf8'});
  const got = readFileSync(file, 'utf8');
  check(got.split(/\r?\n/).length > 3, 'the export has rows');
  check(got.replace(/\r\n/g, '\n') === cli.replace(/\r\n/g, '\n'), 'the download equals fieldmatch export');
  check(got.includes(',no_equivalent,'), 'the export carries no_equivalent rows');
  // an admin can start a run; the table shows it
  await page.getByRole('button', {name: 'Start a batch run'}).click();
  await until(async () => (await apiGet('/v1/batch-runs')).runs.length >= 2, 'the second run');
  await page.getByText(/Batch run \d+ started/).waitFor();
  await page.context().close();
});

test('an admin creates and revokes a token', async () => {
  const page = await newPage('admin');
  await page.getByRole('link', {name: 'Tokens'}).click();
  await page.getByRole('heading', {name: 'Tokens'}).waitFor();
  await page.getByLabel('Owner').fill('carla');
  await page.getByRole('button', {name: 'Create token'}).click();
  const secret = (await page.locator('#tok-secret code').textContent()).trim();
  check((await apiGet('/v1/me', secret)).owner === 'carla', 'the new token works');
  await axe(page, 'tokens');
  const id = (await apiGet('/v1/admin/tokens', TOK.admin)).tokens.find((t) => t.owner === 'carla').id;
  await page.getByRole('button', {name: `Revoke token ${id}`}).click();
  await page.getByRole('dialog').getByRole('button', {name: 'Confirm'}).click();
  await until(async () => (await fetch(`${B}/v1/me`, {headers: {Authorization: `Bearer ${secret}`}})).status === 401, 'the revocation');
  const ana = await newPage('ana');
  check(await ana.getByRole('link', {name: 'Tokens'}).isHidden(), 'analysts see no Tokens link');
  await ana.context().close();
  await page.context().close();
});

test('a description holding <script> renders as text', async () => {
  const page = await newPage('ana');
  await openField(page, env.FM_E2E_XSS);
  const text = await page.locator('.fieldhead .desc').textContent();
  check(text.startsWith('<script>window.__xss = 1</script><img src=x'), `shown as written: ${text}`);
  check(await page.evaluate(() => window.__xss === undefined), 'nothing ran');
  check(await page.locator('main script, main img, main b').count() === 0, 'no element made from it');
  await shot(page, 'escaped');
  await page.context().close();
});

test('narrow window and the keys help', async () => {
  const page = await newPage('ana', {width: 400, height: 800});
  const [id] = await queueIds(1);
  await openField(page, id);
  await page.keyboard.press('?');
  await page.getByRole('dialog', {name: 'Keyboard'}).waitFor();
  await shot(page, 'narrow-keys');
  await axe(page, 'keys help');
  await page.keyboard.press('Escape');
  await page.keyboard.press('j');
  await until(async () => fieldId(page) !== id, 'j opens the next field');
  await page.context().close();
});

test('ten decisions from the sign-in form in 13 keystrokes', async () => {
  const page = await newPage(null);
  const daily = async () => (await apiGet('/v1/review/daily?days=1')).items.reduce((a, d) => a + d.accepted + d.no_equivalent, 0);
  const before = await daily();
  let keys = 0;
  await page.goto(`${B}/ui/`);
  await page.getByLabel('API token').focus();
  await page.keyboard.insertText(TOK.ana); keys++; // one paste
  await page.keyboard.press('Enter'); keys++;
  await page.getByRole('heading', {name: 'Review queue'}).waitFor();
  const [first] = await queueIds(1);
  await page.keyboard.press('j'); keys++;
  let id = first;
  for (let i = 0; i < 10; i++) {
    await page.getByRole('heading', {level: 1, name: id, exact: true}).waitFor();
    await page.getByRole('button', {name: 'No equivalent'}).waitFor();
    const hasCands = (await view(id)).candidates.length > 0;
    await page.keyboard.press(hasCands ? '1' : '0'); keys++;
    const was = id;
    if (i < 9) id = await until(async () => fieldId(page) !== was && fieldId(page), 'the next field');
    else await until(async () => (await daily()) === before + 10, 'ten decisions');
  }
  check(keys === 13, `keystrokes: ${keys}`);
  check((await daily()) === before + 10, 'ten decisions recorded');
  await page.context().close();
});

// ---- run -----------------------------------------------------------------------
let failed = 0;
for (const t of tests) {
  const t0 = Date.now();
  try {
    await t.fn();
    console.log(`ok   ${t.name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${t.name}: ${e.message}`);
  }
}
if (problems.length) {
  failed++;
  console.log(`FAIL browser problems (CSP, script errors):\n  ${[...new Set(problems)].join('\n  ')}`);
}
await browser.close();
console.log(`e2e: ${tests.length - failed + (problems.length ? 1 : 0)} passed, ${failed} failed; screenshots in ${OUT}`);
process.exit(failed ? 1 : 0);
