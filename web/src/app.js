// kvcenter dashboard: a small single-page client of vpxd's REST API.
// Everything it shows comes from the same routes scripts use (/api/...);
// live updates come from the event stream (/api/kvc/events/stream).

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const fmtTime = (t) => (t ? new Date(t).toLocaleTimeString() : '');
const fmtMiB = (m) => (m >= 1024 ? `${(m / 1024).toFixed(1)} GiB` : `${m} MiB`);

const session = {
  token: sessionStorage.getItem('kvc-token'),
  user: sessionStorage.getItem('kvc-user'),
};

class ApiError extends Error {
  constructor(status, body) {
    const msg = body?.messages?.[0]?.default_message || body?.error_type || `HTTP ${status}`;
    super(msg);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body, extraHeaders = {}) {
  const headers = { Accept: 'application/json', ...extraHeaders };
  if (session.token) headers['vmware-api-session-id'] = session.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (r.status === 401 && path !== '/api/session') {
    showLogin('Your session has ended. Please log in again.');
    throw new ApiError(r.status, data);
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

function toast(msg, ms = 4000) {
  const t = $('#toast');
  t.textContent = msg;
  t.classList.remove('hidden');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.add('hidden'), ms);
}

/* ---------- login ---------- */

function showLogin(message) {
  session.token = null;
  sessionStorage.removeItem('kvc-token');
  stopLive();
  $('#app').classList.add('hidden');
  $('#login').classList.remove('hidden');
  const e = $('#login-error');
  e.textContent = message || '';
  e.classList.toggle('hidden', !message);
  $('#login-user').focus();
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const user = $('#login-user').value;
  const pass = $('#login-password').value;
  $('#login-submit').disabled = true;
  try {
    const token = await api('POST', '/api/session', undefined, { Authorization: 'Basic ' + btoa(`${user}:${pass}`) });
    session.token = token;
    session.user = user;
    sessionStorage.setItem('kvc-token', token);
    sessionStorage.setItem('kvc-user', user);
    $('#login-password').value = '';
    start();
  } catch (e) {
    const el = $('#login-error');
    el.textContent = e.status === 401 ? 'Invalid user name or password.' : `Login failed: ${e.message}`;
    el.classList.remove('hidden');
  } finally {
    $('#login-submit').disabled = false;
  }
});

$('#logout').addEventListener('click', async () => {
  try { await api('DELETE', '/api/session'); } catch { /* already gone */ }
  session.token = null;
  sessionStorage.clear();
  location.hash = '#/';
  showLogin();
});

/* ---------- inventory ---------- */

const inv = { datacenters: [], clusters: [], hosts: [], vms: [], datastores: [] };

async function loadInventory() {
  const [datacenters, clusters, hosts, vms, datastores] = await Promise.all([
    api('GET', '/api/vcenter/datacenter'),
    api('GET', '/api/vcenter/cluster'),
    api('GET', '/api/vcenter/host'),
    api('GET', '/api/vcenter/vm'),
    api('GET', '/api/vcenter/datastore').catch(() => []),
  ]);
  // Membership: ask per parent with the spec's filters.
  const clusterOf = {};
  const dcOfCluster = {};
  const dcOfHost = {};
  const hostOfVm = {};
  await Promise.all([
    ...datacenters.map(async (dc) => {
      const [cl, ho] = await Promise.all([
        api('GET', `/api/vcenter/cluster?datacenters=${dc.datacenter}`),
        api('GET', `/api/vcenter/host?datacenters=${dc.datacenter}`).catch(() => []),
      ]);
      cl.forEach((c) => { dcOfCluster[c.cluster] = dc.datacenter; });
      ho.forEach((h) => { dcOfHost[h.host] = dc.datacenter; });
    }),
    ...clusters.map(async (c) => {
      (await api('GET', `/api/vcenter/host?clusters=${c.cluster}`)).forEach((h) => { clusterOf[h.host] = c.cluster; });
    }),
    ...hosts.map(async (h) => {
      (await api('GET', `/api/vcenter/vm?hosts=${h.host}`)).forEach((v) => { hostOfVm[v.vm] = h.host; });
    }),
  ]);
  clusters.forEach((c) => { c.datacenter = dcOfCluster[c.cluster]; });
  hosts.forEach((h) => { h.cluster = clusterOf[h.host]; h.datacenter = dcOfHost[h.host]; });
  vms.forEach((v) => { v.host = hostOfVm[v.vm]; });
  Object.assign(inv, { datacenters, clusters, hosts, vms, datastores });
  renderTree();
}

function treeLink(kind, id, label, icon, iconClass = '') {
  const sel = location.hash.startsWith(`#/${kind}/${id}`) ? 'sel' : '';
  return `<a href="#/${kind}/${id}" class="${sel}" data-id="${esc(id)}"><span class="ico ${iconClass}">${icon}</span>${esc(label)}</a>`;
}

function vmItems(hostId) {
  return inv.vms.filter((v) => v.host === hostId).map((v) =>
    `<li>${treeLink('vm', v.vm, v.name, v.power_state === 'POWERED_ON' ? '&#9654;' : '&#9632;', v.power_state === 'POWERED_ON' ? 'on' : '')}</li>`).join('');
}

function hostItems(filter) {
  return inv.hosts.filter(filter).map((h) => {
    const bad = h.connection_state && h.connection_state !== 'CONNECTED';
    return `<li>${treeLink('host', h.host, h.name, '&#9636;', bad ? 'bad' : '')}<ul>${vmItems(h.host)}</ul></li>`;
  }).join('');
}

function renderTree() {
  let html = '';
  for (const dc of inv.datacenters) {
    html += `<li>${treeLink('datacenter', dc.datacenter, dc.name, '&#9707;')}<ul>`;
    for (const c of inv.clusters.filter((x) => x.datacenter === dc.datacenter)) {
      html += `<li>${treeLink('cluster', c.cluster, c.name, '&#9673;')}<ul>${hostItems((h) => h.cluster === c.cluster)}</ul></li>`;
    }
    html += hostItems((h) => !h.cluster && h.datacenter === dc.datacenter);
    html += '</ul></li>';
  }
  html += hostItems((h) => !h.cluster && !h.datacenter);
  const orphans = inv.vms.filter((v) => !v.host);
  if (orphans.length) {
    html += orphans.map((v) => `<li>${treeLink('vm', v.vm, v.name, '&#9632;')}</li>`).join('');
  }
  $('#tree').innerHTML = html || '<li class="muted">No inventory yet. Add a host.</li>';
}

/* ---------- pages ---------- */

let pageCleanup = null;
function setPage(html) {
  if (pageCleanup) { pageCleanup(); pageCleanup = null; }
  $('#main').innerHTML = html;
}

function kv(pairs) {
  return `<dl class="kv">${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

async function pageHome() {
  const on = inv.vms.filter((v) => v.power_state === 'POWERED_ON').length;
  setPage(`<h1>Inventory</h1><div class="subtitle">All datacenters</div>
    <div class="cards">
      <div class="card"><h2>Datacenters</h2><div class="big">${inv.datacenters.length}</div></div>
      <div class="card"><h2>Clusters</h2><div class="big">${inv.clusters.length}</div></div>
      <div class="card"><h2>Hosts</h2><div class="big">${inv.hosts.length}</div></div>
      <div class="card"><h2>Virtual machines</h2><div class="big">${inv.vms.length} <span class="muted">(${on} powered on)</span></div></div>
    </div>
    <h2 style="margin-top:20px">Virtual machines</h2>${vmTable(inv.vms)}`);
}

function vmTable(vms) {
  if (!vms.length) return '<p class="muted">No virtual machines.</p>';
  return `<table class="grid"><thead><tr><th>Name</th><th>State</th><th>vCPUs</th><th>Memory</th><th>Host</th></tr></thead><tbody>
    ${vms.map((v) => `<tr><td><a href="#/vm/${esc(v.vm)}">${esc(v.name)}</a></td><td><span class="state ${esc(v.power_state)}">${esc(v.power_state)}</span></td>
    <td>${esc(v.cpu_count ?? '')}</td><td>${v.memory_size_MiB ? fmtMiB(v.memory_size_MiB) : ''}</td>
    <td>${esc(inv.hosts.find((h) => h.host === v.host)?.name ?? '')}</td></tr>`).join('')}</tbody></table>`;
}

async function pageDatacenter(id) {
  const dc = inv.datacenters.find((d) => d.datacenter === id);
  if (!dc) return notFound(id);
  const clusters = inv.clusters.filter((c) => c.datacenter === id);
  setPage(`<h1><span class="ico">&#9707;</span>${esc(dc.name)}</h1><div class="subtitle">Datacenter ${esc(id)}</div>
    <div class="card">${kv([['Clusters', clusters.length], ['Hosts', inv.hosts.filter((h) => h.datacenter === id).length]])}</div>`);
}

async function pageCluster(id) {
  const c = await api('GET', `/api/vcenter/cluster/${id}`);
  const hosts = inv.hosts.filter((h) => h.cluster === id);
  setPage(`<h1><span class="ico">&#9673;</span>${esc(c.name)}</h1><div class="subtitle">Cluster ${esc(id)}</div>
    <div class="cards"><div class="card"><h2>Summary</h2>${kv([
      ['vSphere HA', c.ha_enabled ? 'On' : 'Off'], ['DRS', c.drs_enabled ? 'On' : 'Off'],
      ['Hosts', hosts.length], ['Virtual machines', inv.vms.filter((v) => hosts.some((h) => h.host === v.host)).length]])}</div></div>
    <h2 style="margin-top:20px">Hosts</h2>${hostTable(hosts)}`);
}

function hostTable(hosts) {
  if (!hosts.length) return '<p class="muted">No hosts.</p>';
  return `<table class="grid"><thead><tr><th>Name</th><th>Connection</th><th>Power</th><th>VMs</th></tr></thead><tbody>
   ${hosts.map((h) => `<tr><td><a href="#/host/${esc(h.host)}">${esc(h.name)}</a></td><td><span class="state ${esc(h.connection_state)}">${esc(h.connection_state)}</span></td>
   <td>${esc(h.power_state ?? '')}</td><td>${inv.vms.filter((v) => v.host === h.host).length}</td></tr>`).join('')}</tbody></table>`;
}

function tabs(base, current, names) {
  return `<nav class="tabs">${names.map(([k, label]) => `<a href="${base}/${k}" class="${k === current ? 'on' : ''}">${label}</a>`).join('')}</nav>`;
}

async function pageHost(id, tab = 'summary') {
  const h = inv.hosts.find((x) => x.host === id) || await api('GET', `/api/vcenter/host/${id}`).catch(() => null);
  if (!h) return notFound(id);
  const vms = inv.vms.filter((v) => v.host === id);
  let body = '';
  if (tab === 'monitor') body = chartsHtml();
  else body = `<div class="cards"><div class="card"><h2>Summary</h2>${kv([
      ['Host', esc(h.name)], ['Connection', `<span class="state ${esc(h.connection_state)}">${esc(h.connection_state)}</span>`],
      ['Power', esc(h.power_state ?? '')], ['Cluster', esc(inv.clusters.find((c) => c.cluster === h.cluster)?.name ?? '—')],
      ['Virtual machines', vms.length]])}</div></div>
      <h2 style="margin-top:20px">Virtual machines</h2>${vmTable(vms)}`;
  setPage(`<h1><span class="ico">&#9636;</span>${esc(h.name)}</h1><div class="subtitle">Host ${esc(id)}</div>
    ${tabs(`#/host/${id}`, tab, [['summary', 'Summary'], ['monitor', 'Monitor']])}${body}`);
  if (tab === 'monitor') drawCharts(id);
}

async function pageVm(id, tab = 'summary') {
  let vm;
  try { vm = await api('GET', `/api/vcenter/vm/${id}`); } catch (e) { return notFound(id, e.message); }
  const [tools, ident] = await Promise.all([
    api('GET', `/api/vcenter/vm/${id}/tools`).catch(() => null),
    api('GET', `/api/vcenter/vm/${id}/guest/identity`).catch(() => null),
  ]);
  const on = vm.power_state === 'POWERED_ON';
  const hostId = inv.vms.find((v) => v.vm === id)?.host;
  const toolbar = `<div class="toolbar">
      <button id="act-start" class="primary" ${on ? 'disabled' : ''}>Power on</button>
      <button id="act-stop" ${on ? '' : 'disabled'}>Power off</button>
      <button id="act-suspend" ${on ? '' : 'disabled'}>Suspend</button>
      <button id="act-reset" ${on ? '' : 'disabled'}>Reset</button>
      <button id="act-shutdown" ${on ? '' : 'disabled'}>Shut down guest OS</button>
      <button id="act-delete" ${on ? 'disabled' : ''}>Delete</button></div>`;
  let body;
  if (tab === 'console') {
    body = `<div id="console" class="console" tabindex="0" aria-label="Serial console"></div>
      <form id="console-form" class="console-input"><input id="console-line" placeholder="Type a line for the guest's serial port" autocomplete="off"><button class="primary">Send</button></form>`;
  } else if (tab === 'monitor') {
    body = chartsHtml();
  } else {
    body = `<div class="cards">
      <div class="card"><h2>Guest</h2>${kv([
        ['Power state', `<span class="state ${esc(vm.power_state)}">${esc(vm.power_state)}</span>`],
        ['Guest OS', esc(vm.guest_OS)], ['VMware-style tools', `<span class="state ${esc(tools?.run_state)}-tools">${esc(tools?.run_state ?? 'unknown')}</span>`],
        ['Guest name', esc(ident?.full_name?.default_message ?? ident?.name ?? '—')], ['IP address', esc(ident?.ip_address ?? '—')]])}</div>
      <div class="card"><h2>Hardware</h2>${kv([
        ['vCPUs', esc(vm.cpu?.count)], ['Memory', vm.memory ? fmtMiB(vm.memory.size_MiB) : ''],
        ['Host', hostId ? `<a href="#/host/${esc(hostId)}">${esc(inv.hosts.find((h) => h.host === hostId)?.name ?? hostId)}</a>` : '—'],
        ['Instance UUID', esc(vm.identity?.instance_uuid ?? '')]])}</div></div>`;
  }
  setPage(`<h1><span class="ico ${on ? 'on' : ''}">${on ? '&#9654;' : '&#9632;'}</span>${esc(vm.name)}</h1>
    <div class="subtitle">Virtual machine ${esc(id)}</div>${toolbar}
    ${tabs(`#/vm/${id}`, tab, [['summary', 'Summary'], ['monitor', 'Monitor'], ['console', 'Console']])}${body}`);
  const power = (action, path = 'power') => async () => {
    try {
      const task = await api('POST', `/api/vcenter/vm/${id}/${path}?action=${action}&vmw-task=true`);
      if (typeof task === 'string') trackTask(task);
      toast(`${action} requested for ${vm.name}`);
    } catch (e) { toast(`${action} failed: ${e.message}`); }
    refreshSoon();
  };
  $('#act-start').onclick = power('start');
  $('#act-stop').onclick = power('stop');
  $('#act-suspend').onclick = power('suspend');
  $('#act-reset').onclick = power('reset');
  $('#act-shutdown').onclick = power('shutdown', 'guest/power');
  $('#act-delete').onclick = async () => {
    if (!confirm(`Delete ${vm.name} and its files?`)) return;
    try { await api('DELETE', `/api/vcenter/vm/${id}`); toast(`${vm.name} deleted`); location.hash = '#/'; } catch (e) { toast(`Delete failed: ${e.message}`); }
    refreshSoon();
  };
  if (tab === 'console') startConsole(id);
  if (tab === 'monitor') drawCharts(id);
}

function notFound(id, msg) {
  setPage(`<h1>Not found</h1><p class="muted">${esc(id)}: ${esc(msg || 'no such object')}</p>`);
}

/* ---------- console ---------- */

function startConsole(id) {
  const box = $('#console');
  let offset = 0;
  let stopped = false;
  let timer = null;
  async function poll() {
    if (stopped) return;
    try {
      const r = await api('GET', `/api/kvc/vm/${id}/console?offset=${offset}`);
      if (r.data) {
        const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
        box.textContent += r.data;
        if (atEnd) box.scrollTop = box.scrollHeight;
      }
      offset = r.offset ?? offset;
    } catch (e) {
      if (!box.dataset.err) { box.dataset.err = 1; box.textContent += `\n[console unavailable: ${e.message}]\n`; }
    }
    timer = setTimeout(poll, 500);
  }
  poll();
  $('#console-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const line = $('#console-line').value;
    $('#console-line').value = '';
    try { await api('POST', `/api/kvc/vm/${id}/console`, { data: line + '\n' }); } catch (e) { toast(`Console input failed: ${e.message}`); }
  };
  pageCleanup = () => { stopped = true; clearTimeout(timer); };
}

/* ---------- performance charts ---------- */

function chartsHtml() {
  return `<div class="cards"><div class="card"><h2>CPU usage (%)</h2><div class="chart-box"><canvas id="chart-cpu"></canvas></div></div>
    <div class="card"><h2>Memory (MiB)</h2><div class="chart-box"><canvas id="chart-mem"></canvas></div></div></div>
    <p class="muted" id="chart-note"></p>`;
}

async function drawCharts(entity) {
  const charts = [];
  let timer = null;
  let stopped = false;
  const mk = (canvas, label, color) => new window.Chart(canvas, {
    type: 'line',
    data: { labels: [], datasets: [{ label, data: [], borderColor: color, backgroundColor: color + '33', fill: true, tension: 0.25, pointRadius: 0 }] },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true } }, plugins: { legend: { display: false } } },
  });
  if (!window.Chart) { $('#chart-note').textContent = 'Charting library failed to load.'; return; }
  charts.push(mk($('#chart-cpu'), 'CPU %', '#0079b8'), mk($('#chart-mem'), 'Memory MiB', '#2e7d32'));
  async function update() {
    if (stopped) return;
    try {
      const s = await api('GET', `/api/kvc/stats?entity=${entity}&interval=realtime`);
      const samples = s.samples || [];
      const labels = samples.map((x) => fmtTime(x.time));
      charts[0].data.labels = labels; charts[0].data.datasets[0].data = samples.map((x) => x.cpu_percent);
      charts[1].data.labels = labels; charts[1].data.datasets[0].data = samples.map((x) => x.mem_MiB);
      charts.forEach((c) => c.update());
      $('#chart-note').textContent = samples.length ? '' : 'No samples yet.';
    } catch (e) {
      $('#chart-note').textContent = `Statistics unavailable: ${e.message}`;
    }
    timer = setTimeout(update, 5000);
  }
  update();
  pageCleanup = () => { stopped = true; clearTimeout(timer); charts.forEach((c) => c.destroy()); };
}

/* ---------- tasks, events, alarms ---------- */

const tracked = new Map();   // task id -> last seen info

function trackTask(id) {
  tracked.set(id, tracked.get(id) || { id });
  pollTasks();
}

async function pollTasks() {
  clearTimeout(pollTasks.timer);
  let running = false;
  try {
    const list = await api('GET', '/api/cis/tasks').catch(() => null);
    if (list && typeof list === 'object') {
      for (const [id, t] of Object.entries(Array.isArray(list) ? Object.fromEntries(list.map((x) => [x.task ?? x.id, x])) : list)) {
        tracked.set(id, { id, ...t });
      }
    }
    for (const [id, t] of tracked) {
      if (!t.status || t.status === 'RUNNING' || t.status === 'PENDING') {
        tracked.set(id, { id, ...(await api('GET', `/api/cis/tasks/${id}`).catch(() => t)) });
      }
    }
  } catch { /* keep the last view */ }
  const rows = [...tracked.values()].sort((a, b) => String(b.start_time).localeCompare(String(a.start_time))).slice(0, 30);
  $('#recent-tasks').innerHTML = rows.map((t) => {
    if (t.status === 'RUNNING' || t.status === 'PENDING') running = true;
    const total = t.progress?.total || 100;
    const pct = t.status === 'SUCCEEDED' ? 100 : Math.round(100 * (t.progress?.completed ?? 0) / total);
    const cls = t.status === 'SUCCEEDED' ? 'done' : t.status === 'FAILED' ? 'failed' : '';
    return `<tr data-task="${esc(t.id)}"><td>${esc(t.description?.default_message || t.operation || t.id)}</td><td>${esc(t.target?.id ?? '')}</td>
      <td><span class="state ${esc(t.status)}">${esc(t.status ?? '…')}</span></td>
      <td class="prog"><div class="meter ${cls}" title="${pct}%"><div style="width:${pct}%"></div></div></td><td>${fmtTime(t.start_time)}</td></tr>`;
  }).join('') || '<tr><td colspan="5" class="muted">No recent tasks.</td></tr>';
  pollTasks.timer = setTimeout(pollTasks, running ? 1000 : 5000);
}

async function pageTasks() {
  setPage(`<h1>Tasks</h1><div class="subtitle">Recent and running tasks</div><div id="task-list"></div>`);
  $('#task-list').innerHTML = `<table class="grid">${$('.tasks-panel table').innerHTML}</table>`;
}

async function pageEvents() {
  let ev = [];
  try { ev = await api('GET', '/api/kvc/events'); } catch (e) { return setPage(`<h1>Events</h1><p class="error">${esc(e.message)}</p>`); }
  const list = Array.isArray(ev) ? ev : (ev.events || []);
  setPage(`<h1>Events</h1><div class="subtitle">${list.length} most recent</div>
    <table class="grid" id="events-table"><thead><tr><th>Time</th><th>Type</th><th>Object</th><th>Description</th><th>User</th></tr></thead><tbody>
    ${list.map((e) => `<tr><td>${esc(fmtTime(e.time ?? e.created_time))}</td><td>${esc(e.type)}</td><td>${esc(e.object ?? e.target ?? '')}</td><td>${esc(e.message ?? e.description ?? '')}</td><td>${esc(e.user ?? '')}</td></tr>`).join('')}
    </tbody></table>`);
}

async function pageAlarms() {
  let al = [];
  try { al = await api('GET', '/api/kvc/alarms'); } catch (e) { return setPage(`<h1>Alarms</h1><p class="error">${esc(e.message)}</p>`); }
  const list = Array.isArray(al) ? al : (al.alarms || []);
  setPage(`<h1>Alarms</h1><div class="subtitle">Triggered alarms</div>
    <table class="grid"><thead><tr><th>Object</th><th>Alarm</th><th>Status</th><th>Triggered</th></tr></thead><tbody>
    ${list.map((a) => `<tr><td>${esc(a.object ?? a.entity ?? '')}</td><td>${esc(a.name ?? a.alarm ?? '')}</td><td><span class="state ${esc(a.status)}">${esc(a.status ?? '')}</span></td><td>${esc(fmtTime(a.time ?? a.triggered_time))}</td></tr>`).join('') || '<tr><td colspan="4" class="muted">No triggered alarms.</td></tr>'}
    </tbody></table>`);
}

async function updateAlarmBadge() {
  try {
    const al = await api('GET', '/api/kvc/alarms');
    const n = (Array.isArray(al) ? al : (al.alarms || [])).filter((a) => a.status !== 'green' && a.status !== 'cleared').length;
    const b = $('#alarm-count');
    b.textContent = n;
    b.classList.toggle('hidden', !n);
  } catch { /* not fatal */ }
}

/* ---------- wizards ---------- */

function openVmWizard() {
  const d = $('#dlg-vm');
  const sel = $('#vm-placement');
  sel.innerHTML = [
    ...inv.clusters.map((c) => `<option value="cluster:${esc(c.cluster)}">Cluster ${esc(c.name)}</option>`),
    ...inv.hosts.map((h) => `<option value="host:${esc(h.host)}">Host ${esc(h.name)}</option>`),
  ].join('');
  $('#vm-datastore').innerHTML = inv.datastores.map((s) => `<option value="${esc(s.datastore)}">${esc(s.name)}</option>`).join('') || '<option value="">(default)</option>';
  let step = 1;
  const show = () => {
    d.querySelectorAll('.step').forEach((s) => s.classList.toggle('hidden', +s.dataset.step !== step));
    d.querySelectorAll('.steps li').forEach((s) => s.classList.toggle('on', +s.dataset.step === step));
    $('#vm-back').disabled = step === 1;
    $('#vm-next').classList.toggle('hidden', step === 3);
    $('#vm-finish').classList.toggle('hidden', step !== 3);
    if (step === 3) {
      $('#vm-review').innerHTML = kv([['Name', esc($('#vm-name').value)], ['Placement', esc(sel.selectedOptions[0]?.text)],
        ['vCPUs', esc($('#vm-cpus').value)], ['Memory', esc($('#vm-mem').value) + ' MiB'], ['Workload', esc($('#vm-workload').value)],
        ['Power on', $('#vm-poweron').checked ? 'yes' : 'no']]).replace(/^<dl class="kv">|<\/dl>$/g, '');
    }
  };
  $('#vm-error').classList.add('hidden');
  $('#vm-next').onclick = () => {
    const cur = d.querySelector(`.step[data-step="${step}"]`);
    for (const i of cur.querySelectorAll('input')) if (!i.reportValidity()) return;
    step = Math.min(3, step + 1); show();
  };
  $('#vm-back').onclick = () => { step = Math.max(1, step - 1); show(); };
  $('#vm-finish').onclick = async () => {
    const [kind, target] = sel.value.split(':');
    const spec = {
      name: $('#vm-name').value, guest_OS: 'OTHER_LINUX_64',
      placement: { [kind]: target, ...($('#vm-datastore').value ? { datastore: $('#vm-datastore').value } : {}) },
      cpu: { count: +$('#vm-cpus').value }, memory: { size_MiB: +$('#vm-mem').value },
    };
    try {
      const id = await api('POST', '/api/vcenter/vm', spec);
      d.close();
      toast(`Created ${spec.name}`);
      if ($('#vm-poweron').checked) {
        const task = await api('POST', `/api/vcenter/vm/${id}/power?action=start&vmw-task=true`).catch((e) => toast(`Power on failed: ${e.message}`));
        if (typeof task === 'string') trackTask(task);
      }
      await loadInventory();
      location.hash = `#/vm/${id}`;
    } catch (e) {
      const el = $('#vm-error'); el.textContent = e.message; el.classList.remove('hidden');
    }
  };
  step = 1; show();
  d.showModal();
}

function openHostWizard() {
  const d = $('#dlg-host');
  $('#host-folder').innerHTML = [
    ...inv.clusters.map((c) => `<option value="cluster:${esc(c.cluster)}">Cluster ${esc(c.name)}</option>`),
    ...inv.datacenters.map((x) => `<option value="datacenter:${esc(x.datacenter)}">Datacenter ${esc(x.name)}</option>`),
  ].join('');
  $('#host-thumb').classList.add('hidden');
  $('#host-error').classList.add('hidden');
  let thumbprint = null;
  $('#host-submit').textContent = 'Add';
  $('#host-submit').onclick = async () => {
    const [kind, target] = $('#host-folder').value.split(':');
    const spec = {
      hostname: $('#host-name').value, port: +$('#host-port').value, user_name: $('#host-user').value,
      password: $('#host-password').value, ...(kind === 'cluster' ? { folder: undefined, cluster: target } : { datacenter: target }),
      thumbprint_verification: thumbprint ? 'THUMBPRINT' : 'NONE', ...(thumbprint ? { thumbprint } : {}),
    };
    try {
      await api('POST', '/api/vcenter/host', spec);
      d.close();
      toast(`Host ${spec.hostname} added`);
      loadInventory();
    } catch (e) {
      const m = /([0-9A-F]{2}(?::[0-9A-F]{2}){31})/i.exec(JSON.stringify(e.body ?? ''));
      if (m && !thumbprint) {
        thumbprint = m[1];
        $('#host-thumb-value').textContent = thumbprint;
        $('#host-thumb').classList.remove('hidden');
        $('#host-submit').textContent = 'Trust and add';
      } else {
        const el = $('#host-error'); el.textContent = e.message; el.classList.remove('hidden');
      }
    }
  };
  d.showModal();
}

$('#btn-new-vm').onclick = openVmWizard;
$('#btn-add-host').onclick = openHostWizard;

/* ---------- routing and live updates ---------- */

async function route() {
  const [, kind, id, tab] = (location.hash || '#/').split('/');
  document.querySelectorAll('.topnav a').forEach((a) => a.classList.toggle('on', a.dataset.nav === (kind || 'home')));
  renderTree();
  try {
    switch (kind) {
      case 'vm': return await pageVm(id, tab);
      case 'host': return await pageHost(id, tab);
      case 'cluster': return await pageCluster(id);
      case 'datacenter': return await pageDatacenter(id);
      case 'tasks': return await pageTasks();
      case 'events': return await pageEvents();
      case 'alarms': return await pageAlarms();
      default: return await pageHome();
    }
  } catch (e) {
    if (e.status !== 401) setPage(`<h1>Error</h1><p class="error">${esc(e.message)}</p>`);
  }
}

function refreshSoon() {
  clearTimeout(refreshSoon.timer);
  refreshSoon.timer = setTimeout(async () => {
    try { await loadInventory(); } catch { return; }
    const [, kind, , tab] = (location.hash || '#/').split('/');
    // The console and charts keep their own state; other pages redraw.
    if (!(kind === 'vm' && (tab === 'console' || tab === 'monitor'))) route();
    updateAlarmBadge();
    pollTasks();
  }, 150);
}

let live = null;
function stopLive() {
  if (live) live.abort();
  live = null;
  $('#live').classList.remove('on');
}

// The event stream is read with fetch (EventSource cannot send the session header).
async function startLive() {
  stopLive();
  const ctl = new AbortController();
  live = ctl;
  try {
    const r = await fetch('/api/kvc/events/stream', { headers: { 'vmware-api-session-id': session.token, Accept: 'text/event-stream' }, signal: ctl.signal });
    if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
    $('#live').classList.add('on');
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const chunk = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (/^data:/m.test(chunk)) refreshSoon();
      }
    }
  } catch { /* fall through to retry */ }
  if (live === ctl && session.token) {
    $('#live').classList.remove('on');
    setTimeout(() => { if (live === ctl) startLive(); }, 3000);
  }
}

window.addEventListener('hashchange', route);

async function start() {
  $('#login').classList.add('hidden');
  $('#app').classList.remove('hidden');
  $('#whoami').textContent = session.user || '';
  try {
    await loadInventory();
  } catch (e) {
    if (e.status !== 401) toast(`Could not load inventory: ${e.message}`);
    return;
  }
  route();
  pollTasks();
  updateAlarmBadge();
  startLive();
}

if (session.token) start(); else showLogin();
