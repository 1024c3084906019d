// End-to-end test of the dashboard: a real browser (Debian's chromium,
// headless, driven by playwright-core from web/node_modules) against a
// cluster started by kvcenter-up.  Prints TAP; one test per step, each with
// a screenshot kept in $KVC_BUILDDIR/tests/e2e/screenshots/.
//
// Every wait has a deadline; the whole run has a watchdog; the cluster is
// stopped by its PID (kvcenter-up stops what it started) whatever happens.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SRCDIR = process.env.KVC_SRCDIR || new URL('../..', import.meta.url).pathname;
const BUILDDIR = process.env.KVC_BUILDDIR || SRCDIR;
const CHROMIUM = process.env.KVC_CHROMIUM || '/usr/bin/chromium';
const OUT = join(BUILDDIR, 'tests', 'e2e');
const SHOTS = join(OUT, 'screenshots');
const STEP_MS = 30000;          // default deadline of one wait
const WATCHDOG_MS = 300000;     // the whole run

function skipAll(reason) {
  console.log(`1..0 # SKIP ${reason}`);
  process.exit(0);
}

const UP = join(BUILDDIR, 'kvcenter-up');
if (!existsSync(CHROMIUM)) skipAll(`${CHROMIUM} not installed (apt-get install chromium)`);
if (!existsSync(UP) || !existsSync(join(BUILDDIR, 'vpxd', 'vpxd'))) skipAll('kvcenter-up or vpxd not built');
if (!existsSync(join(BUILDDIR, 'web', 'dist', 'index.html'))) skipAll('the dashboard is not built (web/dist: needs npm)');
let chromium;
try {
  ({ chromium } = createRequire(join(SRCDIR, 'web', 'package.json'))('playwright-core'));
} catch {
  skipAll('playwright-core not installed (cd web && npm ci)');
}

mkdirSync(SHOTS, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'kvc-e2e-'));

/* ---- the cluster ---- */

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

const cluster = { proc: null, lines: [], exited: null };

async function startCluster() {
  const port = await freePort();
  // kvm where a vmkd runs (a real guest console); the sim backend elsewhere.
  const backend = process.env.KVC_E2E_BACKEND || (existsSync('/run/kvcenter/vmkd.sock') ? null : 'sim');
  const argv = ['--dir', join(work, 'cluster'), '--hosts', '2', '--port', String(port), ...(backend ? ['--backend', backend] : [])];
  const err = openSync(join(OUT, 'kvcenter-up.err'), 'w');
  cluster.proc = spawn(UP, argv, { stdio: ['ignore', 'pipe', err], detached: true });
  cluster.proc.on('exit', (code, sig) => { cluster.exited = { code, sig }; });
  let buf = '';
  cluster.proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { cluster.lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
  });
  await waitUntil(() => {
    if (cluster.exited) throw new Error(`kvcenter-up exited (${JSON.stringify(cluster.exited)}); see ${join(OUT, 'kvcenter-up.err')}`);
    return cluster.lines.includes('READY');
  }, 120000, 'kvcenter-up READY');
  const get = (k) => cluster.lines.filter((l) => l.startsWith(k + ' ')).map((l) => l.slice(k.length + 1));
  return {
    url: get('URL')[0], user: get('USER')[0], password: get('PASSWORD')[0],
    hostUser: get('HOSTUSER')[0] || 'root', hostPassword: get('HOSTPASSWORD')[0] || '',
    hosts: get('HOST').map((l) => {
      const [id, pid, ...kv] = l.split(' ');
      return { id, pid: +pid, ...Object.fromEntries(kv.map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)])) };
    }),
  };
}

async function stopCluster() {
  const p = cluster.proc;
  if (!p || cluster.exited) return;
  try { process.kill(p.pid, 'SIGTERM'); } catch { return; }
  try {
    await waitUntil(() => cluster.exited, 30000, 'kvcenter-up to stop');
  } catch {
    try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

function waitUntil(cond, ms, what) {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      let v;
      try { v = cond(); } catch (e) { reject(e); return; }
      if (v) resolve(v);
      else if (Date.now() > deadline) reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      else setTimeout(tick, 50);
    };
    tick();
  });
}

/* ---- TAP ---- */

const results = [];
let n = 0;
let failedEarlier = null;
async function step(name, fn) {
  n++;
  if (failedEarlier) {
    console.log(`ok ${n} - ${name} # SKIP an earlier step failed (${failedEarlier})`);
    return;
  }
  try {
    const skip = await fn();
    if (typeof skip === 'string') console.log(`ok ${n} - ${name} # SKIP ${skip}`);
    else console.log(`ok ${n} - ${name}`);
    results.push(true);
  } catch (e) {
    console.log(`not ok ${n} - ${name}`);
    for (const l of String(e.stack || e).split('\n')) console.log(`# ${l}`);
    failedEarlier = name;
    results.push(false);
    await shot(`fail-${n}`).catch(() => {});
  }
}

let page = null;
async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}
const visible = (sel, timeout = STEP_MS) => page.waitForSelector(sel, { state: 'visible', timeout });

/* ---- the run ---- */

const STEPS = 17;
const watchdog = setTimeout(async () => {
  console.log(`Bail out! the run took longer than ${WATCHDOG_MS} ms`);
  await stopCluster().catch(() => {});
  process.exit(1);
}, WATCHDOG_MS);

let ctx = null;
let c = null;
const pageErrors = [];
console.log(`1..${STEPS}`);
try {
  c = await startCluster();
  console.log(`# cluster at ${c.url}, hosts ${c.hosts.map((h) => `${h.id}(${h.backend})`).join(' ')}`);
  ctx = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
    ignoreHTTPSErrors: true,
    viewport: { width: 1366, height: 860 },
    timeout: 60000,
  });
  page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const rest = async (method, path, body) => {
    const r = await ctx.request.fetch(c.url + path, {
      method, headers: { 'vmware-api-session-id': restToken }, ...(body ? { data: body } : {}), timeout: STEP_MS,
    });
    return { status: r.status(), body: r.status() === 204 ? null : await r.json().catch(() => null) };
  };
  let restToken = null;
  {
    const r = await ctx.request.post(`${c.url}/api/session`, {
      headers: { Authorization: 'Basic ' + Buffer.from(`${c.user}:${c.password}`).toString('base64') }, timeout: STEP_MS,
    });
    restToken = await r.json();
  }
  const vmName = 'e2e-web-1';
  let vmId = null;
  let uiToken = null;

  await step('the login page is served at /ui/ and refuses a wrong password', async () => {
    await page.goto(`${c.url}/`, { timeout: STEP_MS });
    if (!page.url().endsWith('/ui/')) throw new Error(`/ redirected to ${page.url()}`);
    await visible('#login-form');
    await page.fill('#login-user', c.user);
    await page.fill('#login-password', 'wrong-password');
    await page.click('#login-submit');
    await page.waitForSelector('#login-error:has-text("Invalid user name or password")');
    await shot('01-login');
  });

  await step('log in: the inventory tree shows the datacenter, cluster and hosts', async () => {
    await page.fill('#login-password', c.password);
    await page.click('#login-submit');
    await visible('#app');
    for (const h of c.hosts) await visible(`#tree a[href="#/host/${h.id}"]`);
    await visible('#live.on');
    uiToken = await page.evaluate(() => sessionStorage.getItem('kvc-token'));
    await shot('02-inventory');
  });

  await step('host summary page', async () => {
    await page.click(`#tree a[href="#/host/${c.hosts[0].id}"]`);
    await visible('h1:has-text("esx-0")');
    await visible('.kv .state.CONNECTED');
    await shot('03-host-summary');
  });

  await step('cluster page shows vSphere HA and DRS', async () => {
    await page.click('#tree a[href^="#/cluster/"]');
    await visible('.card h2:has-text("vSphere HA")');
    await visible('.card h2:has-text("vSphere DRS")');
    for (const h of c.hosts) await visible(`table.grid a[href="#/host/${h.id}"]`);
    await shot('04-cluster');
  });

  await step('create a VM with the wizard', async () => {
    await page.click('#btn-new-vm');
    await visible('#dlg-vm');
    await page.fill('#vm-name', vmName);
    await shot('05-wizard-name');
    await page.click('#vm-next');
    await visible('#vm-cpus');
    await page.fill('#vm-cpus', '2');
    await page.fill('#vm-mem', '128');
    await shot('06-wizard-hardware');
    await page.click('#vm-next');
    await visible(`#vm-review dd:has-text("${vmName}")`);
    await shot('07-wizard-review');
    await page.click('#vm-finish');
    await page.waitForFunction(() => /^#\/vm\/vm-\d+$/.test(location.hash), null, { timeout: STEP_MS });
    vmId = await page.evaluate(() => location.hash.split('/')[2]);
    await visible(`h1:has-text("${vmName}")`);
    await visible(`#tree a[href="#/vm/${vmId}"]`);
    const r = await rest('GET', `/api/vcenter/vm/${vmId}`);
    if (r.status !== 200 || r.body.cpu.count !== 2 || r.body.memory.size_MiB !== 128 || r.body.power_state !== 'POWERED_OFF')
      throw new Error(`the VM is not as created: ${JSON.stringify(r)}`);
    await shot('08-vm-created');
  });

  await step('power it on: the summary follows the event stream', async () => {
    await page.click('#act-start');
    await visible('#vm-state .state.POWERED_ON');
    await visible('#act-stop:not([disabled])');
    await visible(`#tree a[href="#/vm/${vmId}"] .ico.POWERED_ON`);
    await shot('09-vm-powered-on');
  });

  await step('the power-on task finishes in the tasks panel with a full progress bar', async () => {
    await visible(`#recent-tasks tr[data-operation="start"][data-target="${vmId}"][data-status="SUCCEEDED"]`);
    const w = await page.$eval(`#recent-tasks tr[data-target="${vmId}"][data-status="SUCCEEDED"] .meter > div`, (e) => e.style.width);
    if (w !== '100%') throw new Error(`progress bar at ${w}`);
    await shot('10-task-done');
  });

  await step('the power-on event appears on the events page', async () => {
    await page.click('a[data-nav="events"]');
    await visible(`#event-rows tr[data-type="VmPoweredOnEvent"][data-object="${vmId}"], #event-rows tr[data-type="VmPowerStateChangedEvent"][data-object="${vmId}"]`);
    await visible(`#event-rows tr[data-type="VmCreatedEvent"][data-object="${vmId}"]`);
    await shot('11-events');
  });

  await step('the serial console shows the guest output and takes typed input', async () => {
    await page.goto(`${c.url}/ui/#/vm/${vmId}/console`);
    await visible('#console');
    await page.waitForFunction(() => document.querySelector('#console').textContent.length > 0, null, { timeout: STEP_MS });
    await shot('12-console');
    if (await page.$('#console.unavailable')) return `console unavailable: ${await page.textContent('#console')}`;
    const before = await page.textContent('#console');
    await page.fill('#console-line', 'hello from the dashboard');
    await page.press('#console-line', 'Enter');
    await page.waitForFunction((b) => document.querySelector('#console').textContent.length > b, before.length, { timeout: STEP_MS });
    await shot('12-console');
  });

  await step('performance charts draw the host\'s samples from the stats API', async () => {
    await page.goto(`${c.url}/ui/#/host/${c.hosts[0].id}/monitor`);
    await visible('#chart-cpu');
    // Hosts report every stats interval (20 s by kvcenter-up's default).
    await page.waitForFunction(() => +(document.querySelector('#main').dataset.samples || 0) > 0, null, { timeout: 60000 });
    await shot('13-charts');
  });

  await step('alarms page lists the alarm the power change triggered', async () => {
    await page.click('a[data-nav="alarms"]');
    await visible('#alarms-triggered');
    await visible(`#alarms-triggered a[href="#/vm/${vmId}"]`);
    await shot('14-alarms');
  });

  await step('migrate the running VM to the other host: the task and the tree follow', async () => {
    await page.click(`#tree a[href="#/vm/${vmId}"]`);
    await visible(`h1:has-text("${vmName}")`);
    const from = (await rest('GET', `/api/vcenter/vm?hosts=${c.hosts[0].id}`)).body.some((v) => v.vm === vmId) ? c.hosts[0] : c.hosts[1];
    const to = from === c.hosts[0] ? c.hosts[1] : c.hosts[0];
    await page.click('#act-migrate');
    await visible('#dlg-migrate');
    await page.selectOption('#migrate-host', to.id);
    await shot('15-migrate');
    await page.click('#migrate-ok');
    await page.waitForSelector('#dlg-migrate', { state: 'hidden' });
    await visible(`#recent-tasks tr[data-operation="relocate"][data-target="${vmId}"][data-status="SUCCEEDED"]`);
    await visible(`#tree li:has(> a[href="#/host/${to.id}"]) a[href="#/vm/${vmId}"]`);
    const r = await rest('GET', `/api/vcenter/vm?hosts=${to.id}`);
    if (!r.body.some((v) => v.vm === vmId)) throw new Error(`${vmId} is not on ${to.id}: ${JSON.stringify(r.body)}`);
    await shot('16-migrated');
  });

  await step('maintenance mode: enter and exit on the host without the VM', async () => {
    const onIt = async (host) => (await rest('GET', `/api/vcenter/vm?hosts=${host.id}`)).body.some((v) => v.vm === vmId);
    const h = (await onIt(c.hosts[1])) ? c.hosts[0] : c.hosts[1];
    await page.click(`#tree a[href="#/host/${h.id}"]`);
    await visible('#act-maint-enter:not([disabled])');
    await page.click('#act-maint-enter');
    await visible('.kv .state.yellow:has-text("In maintenance")');
    await visible('#act-maint-exit:not([disabled])');
    if ((await rest('GET', `/api/kvc/host/${h.id}`)).body?.in_maintenance !== true) throw new Error('not in maintenance');
    await shot('17-maintenance');
    await page.click('#act-maint-exit');
    await visible('#act-maint-enter:not([disabled])');
    if ((await rest('GET', `/api/kvc/host/${h.id}`)).body?.in_maintenance !== false) throw new Error('still in maintenance');
  });

  await step('add a host: the wizard shows its thumbprint and adds it once trusted', async () => {
    // The host that does not run the test VM leaves and comes back.
    const onIt = async (host) => (await rest('GET', `/api/vcenter/vm?hosts=${host.id}`)).body.some((v) => v.vm === vmId);
    const h = (await onIt(c.hosts[1])) ? c.hosts[0] : c.hosts[1];
    h.name = (await rest('GET', '/api/vcenter/host')).body.find((x) => x.host === h.id).name;
    const del = await rest('DELETE', `/api/vcenter/host/${h.id}`);
    if (del.status !== 204) throw new Error(`removing ${h.id}: ${JSON.stringify(del)}`);
    await page.waitForSelector(`#tree a[href="#/host/${h.id}"]`, { state: 'detached' });
    await page.click('#btn-add-host');
    await visible('#dlg-host');
    await page.fill('#host-name', '127.0.0.1');
    await page.fill('#host-port', h.port);
    await page.fill('#host-user', c.hostUser);
    await page.fill('#host-password', c.hostPassword);
    await page.click('#host-submit');
    await visible('#host-thumb');
    const shown = (await page.textContent('#host-thumb-value')).trim();
    if (shown !== h.thumbprint) throw new Error(`thumbprint shown ${shown}, host has ${h.thumbprint}`);
    await shot('18-add-host-thumbprint');
    await page.click('#host-submit:has-text("Trust and add")');
    await page.waitForSelector('#dlg-host', { state: 'hidden' });
    await page.waitForFunction(() => /^#\/host\/host-\d+$/.test(location.hash), null, { timeout: STEP_MS });
    await visible(`h1:has-text("${h.name}")`);
    await visible('.kv .state.CONNECTED');
    await shot('19-host-added');
  });

  await step('power the VM off', async () => {
    await page.click(`#tree a[href="#/vm/${vmId}"]`);
    await visible(`h1:has-text("${vmName}")`);
    await page.click('#act-stop');
    await visible('#vm-state .state.POWERED_OFF');
    await visible(`#recent-tasks tr[data-operation="stop"][data-target="${vmId}"][data-status="SUCCEEDED"]`);
    const r = await rest('GET', `/api/vcenter/vm/${vmId}/power`);
    if (r.body?.state !== 'POWERED_OFF') throw new Error(`power state ${JSON.stringify(r.body)}`);
    await shot('20-vm-powered-off');
  });

  await step('log out: back at the login page, the session is gone', async () => {
    await page.click('#logout');
    await visible('#login-form');
    const r = await ctx.request.get(`${c.url}/api/session`, { headers: { 'vmware-api-session-id': uiToken }, timeout: STEP_MS });
    if (r.status() !== 401) throw new Error(`the old session still answers ${r.status()}`);
    await shot('21-logged-out');
  });

  await step('no JavaScript errors on any page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  });
} catch (e) {
  // Set-up failed: every step not run yet fails with the reason.
  for (const l of String(e.stack || e).split('\n')) console.log(`# ${l}`);
  while (n < STEPS) { n++; console.log(`not ok ${n} - not run: ${String(e.message).split('\n')[0]}`); }
} finally {
  if (ctx) await ctx.close().catch(() => {});
  await stopCluster();
  clearTimeout(watchdog);
  writeFileSync(join(OUT, 'kvcenter-up.out'), cluster.lines.filter((l) => !/PASSWORD /.test(l)).join('\n') + '\n');
  rmSync(work, { recursive: true, force: true });
}
