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

const inv = { datacenters: [], clusters: [], hosts: [], vms: [], datastores: [], networks: [] };
const nameOf = (id) => {
  if (!id) return '';
  for (const [list, key] of [[inv.vms, 'vm'], [inv.hosts, 'host'], [inv.clusters, 'cluster'], [inv.datacenters, 'datacenter'], [inv.datastores, 'datastore'], [inv.networks, 'network']]) {
    const o = list.find((x) => x[key] === id);
    if (o) return o.name;
  }
  return id;
};
const kindOf = (id) => (String(id).match(/^(vm|host|datacenter|datastore|network)-/) || [])[1] || (String(id).startsWith('domain-c') ? 'cluster' : '');
const objLink = (id) => {
  const k = kindOf(id);
  const known = k && ['vm', 'host', 'cluster', 'datacenter'].includes(k) && nameOf(id) !== id;
  return known ? `<a href="#/${k}/${esc(id)}">${esc(nameOf(id))}</a>` : esc(id ?? '');
};

async function loadInventory() {
  const [datacenters, clusters, hosts, vms, datastores, networks] = await Promise.all([
    api('GET', '/api/vcenter/datacenter'),
    api('GET', '/api/vcenter/cluster'),
    api('GET', '/api/vcenter/host'),
    api('GET', '/api/vcenter/vm'),
    api('GET', '/api/vcenter/datastore').catch(() => []),
    api('GET', '/api/vcenter/network').catch(() => []),
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
  Object.assign(inv, { datacenters, clusters, hosts, vms, datastores, networks });
  renderTree();
}

const ICON = {
  datacenter: '<svg viewBox="0 0 16 16"><path d="M2 14V5l6-3 6 3v9H2zm2-2h2V8H4v4zm3 0h2V8H7v4zm3 0h2V8h-2v4z"/></svg>',
  cluster: '<svg viewBox="0 0 16 16"><circle cx="5" cy="5" r="3"/><circle cx="11" cy="5" r="3"/><circle cx="8" cy="11" r="3"/></svg>',
  host: '<svg viewBox="0 0 16 16"><path d="M2 2h12v5H2zM2 9h12v5H2z"/><circle cx="11.5" cy="4.5" r="1" fill="#fff"/><circle cx="11.5" cy="11.5" r="1" fill="#fff"/></svg>',
  vm: '<svg viewBox="0 0 16 16"><path d="M1 3h14v8H1zM5 13h6v1.5H5z"/></svg>',
};
const vmIcon = (v) => `<span class="ico vm ${esc(v.power_state)}">${ICON.vm}</span>`;

function treeLink(kind, id, label, iconClass = '') {
  const cur = (location.hash || '').split('/');
  const sel = cur[1] === kind && cur[2] === id ? 'sel' : '';
  return `<a href="#/${kind}/${id}" class="${sel}" data-id="${esc(id)}" title="${esc(label)}"><span class="ico ${kind} ${iconClass}">${ICON[kind]}</span><span class="label">${esc(label)}</span></a>`;
}

function vmItems(hostId) {
  return inv.vms.filter((v) => v.host === hostId).sort((a, b) => a.name.localeCompare(b.name)).map((v) =>
    `<li>${treeLink('vm', v.vm, v.name, v.power_state)}</li>`).join('');
}

function hostItems(filter) {
  return inv.hosts.filter(filter).sort((a, b) => a.name.localeCompare(b.name)).map((h) => {
    const cls = h.connection_state !== 'CONNECTED' ? 'bad' : h.in_maintenance ? 'warn' : '';
    return `<li>${treeLink('host', h.host, h.name, cls)}<ul>${vmItems(h.host)}</ul></li>`;
  }).join('');
}

function renderTree() {
  let html = '';
  for (const dc of inv.datacenters) {
    html += `<li>${treeLink('datacenter', dc.datacenter, dc.name)}<ul>`;
    for (const c of inv.clusters.filter((x) => x.datacenter === dc.datacenter)) {
      html += `<li>${treeLink('cluster', c.cluster, c.name)}<ul>${hostItems((h) => h.cluster === c.cluster)}</ul></li>`;
    }
    html += hostItems((h) => !h.cluster && h.datacenter === dc.datacenter);
    html += '</ul></li>';
  }
  html += hostItems((h) => !h.cluster && !h.datacenter);
  const orphans = inv.vms.filter((v) => !v.host);
  if (orphans.length) html += orphans.map((v) => `<li>${treeLink('vm', v.vm, v.name, v.power_state)}</li>`).join('');
  $('#tree').innerHTML = html || '<li class="muted empty">No inventory yet. Add a host.</li>';
}

/* ---------- pages ---------- */

let pageCleanup = null;
let pageKey = '';
function setPage(html, key = location.hash) {
  if (pageCleanup) { pageCleanup(); pageCleanup = null; }
  pageKey = key;
  $('#main').innerHTML = html;
}

function kv(pairs) {
  return `<dl class="kv">${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}
const pill = (s, extra = '') => `<span class="state ${esc(s)}${extra}">${esc(String(s ?? '').replaceAll('_', ' ').toLowerCase())}</span>`;

function stat(label, value, sub = '') {
  return `<div class="card stat"><div class="stat-label">${esc(label)}</div><div class="big">${value}</div><div class="muted">${sub}</div></div>`;
}

async function pageHome() {
  const on = inv.vms.filter((v) => v.power_state === 'POWERED_ON').length;
  const bad = inv.hosts.filter((h) => h.connection_state !== 'CONNECTED').length;
  const cap = inv.datastores.reduce((a, d) => a + (d.capacity || 0), 0);
  const free = inv.datastores.reduce((a, d) => a + (d.free_space || 0), 0);
  setPage(`<h1>Inventory</h1><div class="subtitle">All datacenters</div>
    <div class="cards stats">
      ${stat('Datacenters', inv.datacenters.length)}
      ${stat('Clusters', inv.clusters.length)}
      ${stat('Hosts', inv.hosts.length, bad ? `<span class="bad-text">${bad} not connected</span>` : 'all connected')}
      ${stat('Virtual machines', inv.vms.length, `${on} powered on`)}
      ${stat('Storage', cap ? fmtBytes(cap - free) : '—', cap ? `used of ${fmtBytes(cap)}` : '')}
    </div>
    <h2 class="section">Hosts</h2>${hostTable(inv.hosts)}
    <h2 class="section">Virtual machines</h2>${vmTable(inv.vms)}`);
}

const fmtBytes = (b) => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
};

function vmTable(vms) {
  if (!vms.length) return '<p class="muted">No virtual machines.</p>';
  return `<table class="grid"><thead><tr><th>Name</th><th>State</th><th>vCPUs</th><th>Memory</th><th>Host</th></tr></thead><tbody>
    ${vms.map((v) => `<tr><td><a href="#/vm/${esc(v.vm)}">${vmIcon(v)} ${esc(v.name)}</a></td><td>${pill(v.power_state)}</td>
    <td>${esc(v.cpu_count ?? '')}</td><td>${v.memory_size_MiB ? fmtMiB(v.memory_size_MiB) : ''}</td>
    <td>${v.host ? objLink(v.host) : '—'}</td></tr>`).join('')}</tbody></table>`;
}

function hostTable(hosts) {
  if (!hosts.length) return '<p class="muted">No hosts. Use <b>Add host…</b> to add one.</p>';
  return `<table class="grid"><thead><tr><th>Name</th><th>Connection</th><th>Power</th><th>Cluster</th><th>VMs</th></tr></thead><tbody>
   ${hosts.map((h) => `<tr><td><a href="#/host/${esc(h.host)}">${esc(h.name)}</a></td><td>${pill(h.connection_state)}</td>
   <td>${pill(h.power_state ?? '')}</td><td>${h.cluster ? objLink(h.cluster) : '—'}</td><td>${inv.vms.filter((v) => v.host === h.host).length}</td></tr>`).join('')}</tbody></table>`;
}

async function pageDatacenter(id) {
  const dc = inv.datacenters.find((d) => d.datacenter === id);
  if (!dc) return notFound(id);
  const clusters = inv.clusters.filter((c) => c.datacenter === id);
  const hosts = inv.hosts.filter((h) => h.datacenter === id);
  setPage(`<h1><span class="ico big-ico">${ICON.datacenter}</span>${esc(dc.name)}</h1><div class="subtitle">Datacenter · ${esc(id)}</div>
    <div class="cards stats">${stat('Clusters', clusters.length)}${stat('Hosts', hosts.length)}
    ${stat('Virtual machines', inv.vms.filter((v) => hosts.some((h) => h.host === v.host)).length)}</div>
    <h2 class="section">Hosts</h2>${hostTable(hosts)}
    <h2 class="section">Datastores</h2>${datastoreTable(inv.datastores)}`);
}

function datastoreTable(list) {
  if (!list.length) return '<p class="muted">No datastores.</p>';
  return `<table class="grid"><thead><tr><th>Name</th><th>Type</th><th>Capacity</th><th>Free</th><th style="width:200px">Used</th></tr></thead><tbody>
    ${list.map((d) => {
      const used = d.capacity ? Math.round(100 * (d.capacity - d.free_space) / d.capacity) : 0;
      return `<tr><td>${esc(d.name)}</td><td>${esc(d.type)}</td><td>${fmtBytes(d.capacity || 0)}</td><td>${fmtBytes(d.free_space || 0)}</td>
        <td><div class="meter ${used > 85 ? 'failed' : ''}" title="${used}%"><div style="width:${used}%"></div></div></td></tr>`;
    }).join('')}</tbody></table>`;
}

async function pageCluster(id) {
  const [c, ha, drs, recs] = await Promise.all([
    api('GET', `/api/vcenter/cluster/${id}`),
    api('GET', `/api/kvc/cluster/${id}/ha`).catch(() => null),
    api('GET', `/api/kvc/cluster/${id}/drs`).catch(() => null),
    api('GET', `/api/kvc/cluster/${id}/drs/recommendations?state=pending`).catch(() => null),
  ]);
  const hosts = inv.hosts.filter((h) => h.cluster === id);
  const vms = inv.vms.filter((v) => hosts.some((h) => h.host === v.host));
  const haCard = ha ? `<div class="card"><h2>vSphere HA</h2>${kv([
      ['State', ha.enabled ? '<span class="state green">On</span>' : 'Off'],
      ['Host monitoring', ha.host_monitoring ? 'On' : 'Off'],
      ['Admission control', esc(ha.admission_control?.policy === 'host_failures'
        ? `tolerates ${ha.admission_control.host_failures_tolerated} host failure(s)` : ha.admission_control?.policy ?? '—')],
      ['Restart priority', esc(ha.restart_priority ?? '—')],
      ['Hosts', (ha.hosts || []).map((h) => `${objLink(h.host)} ${pill(h.state)}`).join('<br>') || '—'],
      ['Failover queue', (ha.failover || []).length ? `${ha.failover.length} VM(s) waiting` : 'empty']])}</div>`
    : `<div class="card"><h2>vSphere HA</h2>${kv([['State', c.ha_enabled ? 'On' : 'Off']])}</div>`;
  const loads = drs?.host_loads || {};
  const drsCard = drs ? `<div class="card"><h2>vSphere DRS</h2>${kv([
      ['State', drs.enabled ? '<span class="state green">On</span>' : 'Off'], ['Automation', esc({ manual: 'Manual', partiallyAutomated: 'Partially automated', fullyAutomated: 'Fully automated' }[drs.automation_level] ?? drs.automation_level)],
      ['Migration threshold', esc(drs.migration_threshold)],
      ['Imbalance', `${(100 * (drs.imbalance || 0)).toFixed(1)} % (target ${(100 * (drs.target_imbalance || 0)).toFixed(0)} %)`],
      ['Last pass', esc(fmtDateTime(drs.last_pass))]])}
      <div class="loads">${Object.entries(loads).map(([h, l]) => `<div class="usage-row"><span>${objLink(h)}</span>
        <div class="meter"><div style="width:${Math.min(100, Math.round(100 * l))}%"></div></div><span>${(100 * l).toFixed(1)} % load</span></div>`).join('')}</div>
      <div class="toolbar"><button id="act-drs-run" class="small">Run DRS now</button></div></div>`
    : `<div class="card"><h2>vSphere DRS</h2>${kv([['State', c.drs_enabled ? 'On' : 'Off']])}</div>`;
  const recList = Array.isArray(recs) ? recs : (recs?.recommendations || []);
  const recHtml = recs ? `<h2 class="section">DRS recommendations</h2>${recList.length
    ? `<table class="grid" id="drs-recs"><thead><tr><th>Action</th><th>VM</th><th>From</th><th>To</th><th>Reason</th><th></th></tr></thead><tbody>
      ${recList.map((r) => `<tr><td>${esc(r.action ?? 'migrate')}</td><td>${objLink(r.vm)}</td><td>${objLink(r.source ?? r.from)}</td>
        <td>${objLink(r.target ?? r.to ?? r.host)}</td><td>${esc(r.reason ?? '')}</td>
        <td><button class="small" data-rec="${esc(r.id ?? r.recommendation)}">Apply</button></td></tr>`).join('')}</tbody></table>`
    : '<p class="muted">No pending recommendations: the cluster is balanced.</p>'}` : '';
  setPage(`<h1><span class="ico big-ico">${ICON.cluster}</span>${esc(c.name)}</h1><div class="subtitle">Cluster · ${esc(id)}</div>
    <div class="cards stats">${stat('Hosts', hosts.length, `${hosts.filter((h) => h.connection_state === 'CONNECTED').length} connected`)}
      ${stat('Virtual machines', vms.length, `${vms.filter((v) => v.power_state === 'POWERED_ON').length} powered on`)}</div>
    <div class="cards" style="margin-top:16px">${haCard}${drsCard}</div>
    ${recHtml}
    <h2 class="section">Hosts</h2>${hostTable(hosts)}
    <h2 class="section">Virtual machines</h2>${vmTable(vms)}`);
  const run = $('#act-drs-run');
  if (run) {
    run.onclick = async () => {
      try { await api('POST', `/api/kvc/cluster/${id}/drs?action=run`); toast('DRS pass done'); } catch (e) { toast(`DRS failed: ${e.message}`, 6000); }
      route();
    };
  }
  document.querySelectorAll('[data-rec]').forEach((b) => {
    b.onclick = async () => {
      try { await api('POST', `/api/kvc/cluster/${id}/drs/recommendations?action=apply`, { recommendations: [b.dataset.rec] }); toast('Recommendation applied'); } catch (e) { toast(`Apply failed: ${e.message}`, 6000); }
      refreshSoon();
    };
  });
}

function tabs(base, current, names) {
  return `<nav class="tabs">${names.map(([k, label]) => `<a href="${base}/${k}" class="${k === current ? 'on' : ''}" data-tab="${k}">${label}</a>`).join('')}</nav>`;
}

async function pageHost(id, tab = 'summary') {
  const h = inv.hosts.find((x) => x.host === id);
  if (!h) return notFound(id);
  const vms = inv.vms.filter((v) => v.host === id);
  const connected = h.connection_state === 'CONNECTED';
  const d = await api('GET', `/api/kvc/host/${id}`).catch(() => null);   // details, if this vpxd has them
  const maint = d?.in_maintenance;
  let body = '';
  if (tab === 'monitor') body = chartsHtml(true);
  else if (tab === 'vms') body = vmTable(vms);
  else {
    body = `<div class="cards">
      <div class="card"><h2>Summary</h2>${kv([
        ['Connection', pill(h.connection_state)], ['Power', pill(h.power_state ?? '')],
        ['Cluster', h.cluster ? objLink(h.cluster) : '—'], ['Datacenter', h.datacenter ? objLink(h.datacenter) : '—'],
        ['Maintenance mode', maint === undefined ? '—' : maint ? '<span class="state yellow">In maintenance</span>' : 'No'],
        ['Virtual machines', `${vms.length} (${vms.filter((v) => v.power_state === 'POWERED_ON').length} powered on)`]])}</div>
      ${d ? `<div class="card"><h2>Hardware</h2>${kv([
        ['Address', esc(`${d.hostname}:${d.port}`)], ['CPU', d.cpu_cores ? `${esc(d.cpu_cores)} cores × ${esc(d.cpu_mhz)} MHz` : '—'],
        ['Memory', d.memory_bytes ? fmtBytes(d.memory_bytes) : '—'], ['Version', esc(d.product_version || '—')],
        ['Last heartbeat', esc(fmtDateTime(d.last_seen) || '—')], ['Thumbprint', `<code class="thumb">${esc(d.thumbprint)}</code>`]])}</div>` : ''}
      <div class="card"><h2>Usage now</h2><div id="host-usage" class="usage muted">Waiting for the host's next statistics report…</div></div></div>
      <h2 class="section">Virtual machines</h2>${vmTable(vms)}`;
  }
  setPage(`<h1><span class="ico big-ico ${connected ? '' : 'bad'}">${ICON.host}</span>${esc(h.name)}</h1><div class="subtitle">Host · ${esc(id)}</div>
    <div class="toolbar">
      <button id="act-connect" ${connected ? 'disabled' : ''}>Connect</button>
      <button id="act-disconnect" ${connected ? '' : 'disabled'}>Disconnect</button>
      <button id="act-maint-enter" ${connected && maint !== true ? '' : 'disabled'} title="Moves its running VMs to other hosts of the cluster first">Enter maintenance mode</button>
      <button id="act-maint-exit" ${connected && maint !== false ? '' : 'disabled'}>Exit maintenance mode</button>
      <button id="act-remove" class="danger">Remove from inventory</button></div>
    ${tabs(`#/host/${id}`, tab, [['summary', 'Summary'], ['monitor', 'Monitor'], ['vms', 'VMs']])}${body}`);
  const act = (label, fn) => async () => {
    try { await fn(); toast(`${label}: ${h.name}`); } catch (e) { toast(`${label} failed: ${e.message}`, 6000); }
    refreshSoon();
  };
  $('#act-connect').onclick = act('Connect', () => api('POST', `/api/vcenter/host/${id}?action=connect`));
  $('#act-disconnect').onclick = act('Disconnect', () => api('POST', `/api/vcenter/host/${id}?action=disconnect`));
  const maintAct = (label, action) => act(label, async () => {
    const t = await api('POST', `/api/kvc/host/${id}?action=${action}&vmw-task=true`);
    if (typeof t === 'string') trackTask(t);
  });
  $('#act-maint-enter').onclick = maintAct('Enter maintenance mode', 'enter-maintenance');
  $('#act-maint-exit').onclick = maintAct('Exit maintenance mode', 'exit-maintenance');
  $('#act-remove').onclick = async () => {
    if (!await confirmDialog(`Remove host ${h.name} from the inventory? Its virtual machines are removed from the inventory with it.`, 'Remove')) return;
    await act('Removed', () => api('DELETE', `/api/vcenter/host/${id}`))();
    location.hash = '#/';
  };
  if (tab === 'monitor') drawCharts(id, true);
  if (tab === 'summary') hostUsage(id, d?.memory_bytes);
}

async function hostUsage(id, memBytes) {
  try {
    const s = await api('GET', `/api/kvc/stats?entity=${id}&interval=realtime`);
    const last = s.samples?.[s.samples.length - 1];
    const box = $('#host-usage');
    if (!last || !box) return;
    const pct = Math.min(100, Math.round(last.cpu_percent));
    box.classList.remove('muted');
    box.innerHTML = `<div class="usage-row"><span>CPU</span><div class="meter"><div style="width:${pct}%"></div></div><span>${last.cpu_percent.toFixed(1)}% · ${last.cpu_MHz} MHz</span></div>
      <div class="usage-row"><span>Memory</span><div class="meter green"><div style="width:${memBytes ? Math.min(100, Math.round(100 * last.mem_MiB * 1048576 / memBytes)) : 0}%"></div></div><span>${fmtMiB(Math.round(last.mem_MiB))} consumed${memBytes ? ` of ${fmtBytes(memBytes)}` : ''}</span></div>
      <div class="muted small">As of ${fmtTime(last.time)}</div>`;
  } catch { /* stats not available: keep the note */ }
}

async function pageVm(id, tab = 'summary') {
  let vm;
  try { vm = await api('GET', `/api/vcenter/vm/${id}`); } catch (e) { return notFound(id, e.message); }
  const [tools, ident] = await Promise.all([
    api('GET', `/api/vcenter/vm/${id}/tools`).catch(() => null),
    api('GET', `/api/vcenter/vm/${id}/guest/identity`).catch(() => null),
  ]);
  const st = vm.power_state;
  const on = st === 'POWERED_ON';
  const hostId = inv.vms.find((v) => v.vm === id)?.host;
  const toolbar = `<div class="toolbar" id="vm-toolbar">
      <button id="act-start" class="primary" ${on ? 'disabled' : ''}>${st === 'SUSPENDED' ? 'Resume' : 'Power on'}</button>
      <button id="act-stop" ${st === 'POWERED_OFF' ? 'disabled' : ''}>Power off</button>
      <button id="act-suspend" ${on ? '' : 'disabled'}>Suspend</button>
      <button id="act-reset" ${on ? '' : 'disabled'}>Reset</button>
      <button id="act-shutdown" ${on && tools?.run_state === 'RUNNING' ? '' : 'disabled'} title="Needs the guest's tools">Shut down guest OS</button>
      <button id="act-migrate" ${st === 'SUSPENDED' ? 'disabled' : ''} title="Move it to another host (live when powered on)">Migrate…</button>
      <span class="spacer"></span>
      <button id="act-delete" class="danger" ${st === 'POWERED_OFF' ? '' : 'disabled'}>Delete</button></div>`;
  let body;
  if (tab === 'console') {
    body = `<div id="console" class="console" tabindex="0" aria-label="Serial console"></div>
      <form id="console-form" class="console-input"><input id="console-line" placeholder="Type a line for the guest's serial port, Enter sends it" autocomplete="off"><button class="primary" id="console-send">Send</button></form>`;
  } else if (tab === 'monitor') {
    body = chartsHtml(false);
  } else {
    const nics = Object.values(vm.nics || {});
    const disks = Object.values(vm.disks || {});
    body = `<div class="cards">
      <div class="card"><h2>Guest</h2>${kv([
        ['Power state', `<span id="vm-state">${pill(st)}</span>`],
        ['Guest OS', esc(vm.guest_OS)], ['Tools', pill(tools?.run_state ?? 'unknown', '-tools')],
        ['Host name', esc(ident?.host_name || '—')], ['IP address', esc(ident?.ip_address || '—')]])}</div>
      <div class="card"><h2>Hardware</h2>${kv([
        ['vCPUs', esc(vm.cpu?.count)], ['Memory', vm.memory ? fmtMiB(vm.memory.size_MiB) : ''],
        ['Disks', disks.length ? disks.map((d) => fmtBytes(d.capacity || 0)).join(', ') : 'none'],
        ['Network', nics.length ? nics.map((n) => esc(nameOf(n.backing?.network))).join(', ') : 'none'],
        ['Host', hostId ? objLink(hostId) : '—'],
        ['Instance UUID', `<code class="uuid">${esc(vm.identity?.instance_uuid ?? '')}</code>`]])}</div></div>`;
  }
  setPage(`<h1><span class="ico big-ico vm ${esc(st)}">${ICON.vm}</span>${esc(vm.name)}</h1>
    <div class="subtitle">Virtual machine · ${esc(id)} · ${pill(st)}</div>${toolbar}
    ${tabs(`#/vm/${id}`, tab, [['summary', 'Summary'], ['monitor', 'Monitor'], ['console', 'Console']])}${body}`);
  const power = (label, action, path = 'power') => async () => {
    document.querySelectorAll('#vm-toolbar button').forEach((b) => { b.disabled = true; });
    try {
      const task = await api('POST', `/api/vcenter/vm/${id}/${path}?action=${action}${path === 'power' ? '&vmw-task=true' : ''}`);
      if (typeof task === 'string') trackTask(task);
      toast(`${label}: ${vm.name}`);
    } catch (e) { toast(`${label} failed: ${e.message}`, 6000); }
    refreshSoon();
  };
  $('#act-start').onclick = power('Power on', 'start');
  $('#act-stop').onclick = power('Power off', 'stop');
  $('#act-suspend').onclick = power('Suspend', 'suspend');
  $('#act-reset').onclick = power('Reset', 'reset');
  $('#act-shutdown').onclick = power('Shut down guest OS', 'shutdown', 'guest/power');
  $('#act-migrate').onclick = () => openMigrateDialog(id, vm.name, hostId);
  $('#act-delete').onclick = async () => {
    if (!await confirmDialog(`Delete ${vm.name} and its files from the datastore?`, 'Delete')) return;
    try { await api('DELETE', `/api/vcenter/vm/${id}`); toast(`${vm.name} deleted`); location.hash = '#/'; } catch (e) { toast(`Delete failed: ${e.message}`, 6000); }
    refreshSoon();
  };
  if (tab === 'console') startConsole(id);
  if (tab === 'monitor') drawCharts(id, false);
}

// Migrate: another connected host of the same cluster (shared storage);
// vpxd moves it live when it runs and reports progress in the task.
function openMigrateDialog(id, name, fromHost) {
  const d = $('#dlg-migrate');
  const from = inv.hosts.find((h) => h.host === fromHost);
  const targets = inv.hosts.filter((h) => h.host !== fromHost && h.connection_state === 'CONNECTED'
    && (!from?.cluster || h.cluster === from.cluster));
  $('#migrate-text').textContent = `Move ${name} from ${from?.name ?? 'its host'} to:`;
  $('#migrate-host').innerHTML = targets.map((h) => `<option value="${esc(h.host)}">${esc(h.name)}</option>`).join('');
  $('#migrate-error').classList.add('hidden');
  $('#migrate-ok').disabled = !targets.length;
  if (!targets.length) {
    const el = $('#migrate-error'); el.textContent = 'No other connected host in this cluster.'; el.classList.remove('hidden');
  }
  $('#migrate-ok').onclick = async () => {
    $('#migrate-ok').disabled = true;
    try {
      const t = await api('POST', `/api/vcenter/vm/${id}?action=relocate&vmw-task=true`, { placement: { host: $('#migrate-host').value } });
      if (typeof t === 'string') trackTask(t);
      d.close();
      toast(`Migrating ${name}`);
    } catch (e) {
      const el = $('#migrate-error'); el.textContent = e.message; el.classList.remove('hidden');
    } finally {
      $('#migrate-ok').disabled = false;
    }
  };
  d.showModal();
}

function notFound(id, msg) {
  setPage(`<h1>Not found</h1><p class="muted">${esc(id)}: ${esc(msg || 'no such object (it may have been removed)')}</p>`);
}

function confirmDialog(text, okLabel) {
  const d = $('#dlg-confirm');
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  return new Promise((resolve) => {
    d.onclose = () => resolve(d.returnValue === 'ok');
    d.returnValue = '';
    d.showModal();
  });
}

/* ---------- console ---------- */

// The VM's serial port: GET .../console?offset=N returns {data, offset}
// (output after N); POST {data} types into it.
function startConsole(id) {
  const box = $('#console');
  let offset = 0;
  let stopped = false;
  let timer = null;
  let failures = 0;
  async function poll() {
    if (stopped) return;
    try {
      const r = await api('GET', `/api/kvc/vm/${id}/console?offset=${offset}`);
      failures = 0;
      box.classList.remove('unavailable');
      if (r.data) {
        const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
        box.textContent += r.data;
        if (atEnd) box.scrollTop = box.scrollHeight;
      }
      offset = r.offset ?? offset;
    } catch (e) {
      failures++;
      if (failures === 1) {
        box.classList.add('unavailable');
        box.textContent = e.status === 404 && /no resource/.test(e.message)
          ? 'The serial console is not available: this vpxd has no console route (/api/kvc/vm/{vm}/console).'
          : `The serial console is not available: ${e.message}`;
        $('#console-line').disabled = true;
        $('#console-send').disabled = true;
      }
      if (e.status === 404) return;       // nothing to wait for
    }
    timer = setTimeout(poll, failures ? 5000 : 500);
  }
  poll();
  $('#console-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const line = $('#console-line').value;
    $('#console-line').value = '';
    try { await api('POST', `/api/kvc/vm/${id}/console`, { data: line + '\n' }); } catch (e) { toast(`Console input failed: ${e.message}`); }
  };
  box.focus();
  pageCleanup = () => { stopped = true; clearTimeout(timer); };
}

/* ---------- performance charts ---------- */

const INTERVALS = [['realtime', 'Real-time (last hour)'], ['5min', 'Past day (5-minute averages)'],
  ['30min', 'Past week (30-minute averages)'], ['2h', 'Past month (2-hour averages)'], ['1day', 'Past year (daily averages)']];

function chartsHtml(isHost) {
  return `<div class="chart-controls"><label>Period <select id="chart-interval">${INTERVALS.map(([v, l]) => `<option value="${v}">${l}</option>`).join('')}</select></label></div>
    <div class="cards charts">
    <div class="card"><h2>CPU usage</h2><div class="chart-box"><canvas id="chart-cpu" aria-label="CPU usage chart"></canvas></div></div>
    <div class="card"><h2>Memory consumed</h2><div class="chart-box"><canvas id="chart-mem" aria-label="Memory chart"></canvas></div></div>
    <div class="card"><h2>Network</h2><div class="chart-box"><canvas id="chart-net" aria-label="Network chart"></canvas></div></div>
    <div class="card"><h2>Disk</h2><div class="chart-box"><canvas id="chart-disk" aria-label="Disk chart"></canvas></div></div></div>
    <p class="muted" id="chart-note">${isHost ? 'Host' : 'Virtual machine'} statistics as the host reports them.</p>`;
}

async function drawCharts(entity) {
  if (!window.Chart) { $('#chart-note').textContent = 'The charting library failed to load.'; return; }
  let timer = null;
  let stopped = false;
  const mk = (canvas, sets, unit, max) => new window.Chart(canvas, {
    type: 'line',
    data: { labels: [], datasets: sets.map(([label, color]) => ({ label, data: [], borderColor: color, backgroundColor: color + '26', fill: true, tension: 0.25, pointRadius: 0, borderWidth: 2 })) },
    options: {
      animation: false, maintainAspectRatio: false, interaction: { mode: 'index', intersect: false },
      scales: { x: { ticks: { maxTicksLimit: 6, color: '#617080' }, grid: { display: false } },
        y: { beginAtZero: true, ...(max ? { suggestedMax: max } : {}), ticks: { color: '#617080', callback: (v) => `${v} ${unit}` } } },
      plugins: { legend: { display: sets.length > 1, position: 'bottom', labels: { boxWidth: 12 } } },
    },
  });
  const charts = {
    cpu: mk($('#chart-cpu'), [['CPU %', '#0079b8']], '%', 100),
    mem: mk($('#chart-mem'), [['Consumed', '#2e7d32'], ['Active', '#8bc34a']], 'MiB'),
    net: mk($('#chart-net'), [['Received', '#6a1b9a'], ['Sent', '#ef6c00']], 'KiB/s'),
    disk: mk($('#chart-disk'), [['Read', '#00838f'], ['Written', '#c62828']], 'KiB/s'),
  };
  const set = (c, labels, ...series) => {
    c.data.labels = labels;
    series.forEach((d, i) => { c.data.datasets[i].data = d; });
    c.update();
  };
  let gen = 0;
  async function update() {
    if (stopped) return;
    const my = ++gen;
    try {
      const interval = $('#chart-interval')?.value || 'realtime';
      const s = await api('GET', `/api/kvc/stats?entity=${entity}&interval=${interval}`);
      if (my !== gen || stopped) return;       // a newer update runs
      const x = s.samples || [];
      const long = interval === '2h' || interval === '1day';
      const labels = x.map((p) => (long ? new Date(p.time).toLocaleDateString() + ' ' : '') + fmtTime(p.time));
      const k = (v) => +(v / 1024).toFixed(1);
      // A line needs two points: show the points while there are few.
      Object.values(charts).forEach((c) => c.data.datasets.forEach((d) => { d.pointRadius = x.length < 4 ? 3 : 0; }));
      set(charts.cpu, labels, x.map((p) => p.cpu_percent));
      set(charts.mem, labels, x.map((p) => Math.round(p.mem_MiB)), x.map((p) => Math.round(p.mem_active_MiB)));
      set(charts.net, labels, x.map((p) => k(p.net_rx_Bps)), x.map((p) => k(p.net_tx_Bps)));
      set(charts.disk, labels, x.map((p) => k(p.disk_read_Bps)), x.map((p) => k(p.disk_write_Bps)));
      $('#main').dataset.samples = x.length;
      $('#chart-note').textContent = x.length
        ? `${x.length} samples, the last at ${fmtTime(x[x.length - 1].time)}; updated as the host reports.`
        : interval === 'realtime' ? 'No samples yet: the host reports statistics every stats interval (20 s by default).'
          : 'No samples at this level yet: its first interval has not begun.';
    } catch (e) {
      $('#chart-note').textContent = `Statistics unavailable: ${e.message}`;
    }
    timer = setTimeout(update, 5000);
  }
  $('#chart-interval').onchange = () => { clearTimeout(timer); update(); };
  update();
  pageCleanup = () => { stopped = true; clearTimeout(timer); Object.values(charts).forEach((c) => c.destroy()); delete $('#main').dataset.samples; };
}

/* ---------- tasks, events, alarms ---------- */

const OPS = {
  start: 'Power on virtual machine', stop: 'Power off virtual machine', suspend: 'Suspend virtual machine',
  reset: 'Reset virtual machine', shutdown: 'Shut down guest OS', reboot: 'Restart guest OS',
  relocate: 'Migrate virtual machine', create: 'Create', delete: 'Delete',
  'enter-maintenance': 'Enter maintenance mode', 'exit-maintenance': 'Exit maintenance mode',
};
const taskName = (t) => t.description?.default_message || OPS[t.operation] || `${t.service ?? ''} ${t.operation ?? ''}`.trim() || t.id;

const tasks = new Map();     // task id -> info

function trackTask(id) {
  if (!tasks.has(id)) tasks.set(id, { id, status: 'PENDING', start_time: new Date().toISOString() });
  pollTasks();
}

async function pollTasks() {
  clearTimeout(pollTasks.timer);
  if (!session.token) return;
  try {
    const list = await api('POST', '/api/cis/tasks?action=list');
    for (const [id, t] of Object.entries(list || {})) tasks.set(id, { id, ...t });
  } catch { /* keep the last view */ }
  renderTasks();
  const running = [...tasks.values()].some((t) => t.status === 'RUNNING' || t.status === 'PENDING');
  pollTasks.timer = setTimeout(pollTasks, running ? 700 : 5000);
}

function taskRows(limit) {
  const rows = [...tasks.values()].sort((a, b) => String(b.start_time).localeCompare(String(a.start_time))).slice(0, limit);
  return rows.map((t) => {
    const total = t.progress?.total || 100;
    const pct = t.status === 'SUCCEEDED' ? 100 : Math.round(100 * (t.progress?.completed ?? 0) / total);
    const cls = t.status === 'SUCCEEDED' ? 'done' : t.status === 'FAILED' ? 'failed' : 'running';
    const err = t.error ? (t.error.messages?.[0]?.default_message || JSON.stringify(t.error)) : '';
    return `<tr data-task="${esc(t.id)}" data-status="${esc(t.status)}" data-operation="${esc(t.operation ?? '')}" data-target="${esc(t.target?.id ?? '')}">
      <td>${esc(taskName(t))}</td><td>${t.target ? objLink(t.target.id) : ''}</td>
      <td>${pill(t.status ?? 'PENDING')}${err ? ` <span class="bad-text" title="${esc(err)}">${esc(err.slice(0, 60))}</span>` : ''}${t.cancelable && (t.status === 'RUNNING' || t.status === 'PENDING') ? ` <button class="small" data-cancel="${esc(t.id)}">Cancel</button>` : ''}</td>
      <td class="prog"><div class="meter ${cls}" title="${pct}%"><div style="width:${pct}%"></div></div><span class="pct">${pct}%</span></td>
      <td>${esc(t.user ?? '')}</td><td>${fmtTime(t.start_time)}</td><td>${fmtTime(t.end_time)}</td></tr>`;
  }).join('') || '<tr><td colspan="7" class="muted">No recent tasks.</td></tr>';
}
const TASK_HEAD = '<thead><tr><th>Task</th><th>Target</th><th>Status</th><th>Progress</th><th>Initiator</th><th>Queued</th><th>Completed</th></tr></thead>';

function renderTasks() {
  $('#recent-tasks').innerHTML = taskRows(20);
  const page = $('#task-list');
  if (page) page.innerHTML = taskRows(1000);
  document.querySelectorAll('[data-cancel]').forEach((b) => {
    b.onclick = async () => {
      b.disabled = true;
      try { await api('POST', `/api/cis/tasks/${b.dataset.cancel}?action=cancel`); toast('Cancel requested'); } catch (e) { toast(`Cancel failed: ${e.message}`, 6000); }
      pollTasks();
    };
  });
}

async function pageTasks() {
  setPage(`<h1>Tasks</h1><div class="subtitle">Recent and running tasks (vmw-task=true operations)</div>
    <table class="grid">${TASK_HEAD}<tbody id="task-list"></tbody></table>`);
  renderTasks();
}

const events = { list: [], loaded: false, maxSeq: 0 };

async function loadEvents() {
  // The API lists events oldest first after `since`; page to the newest.
  let since = events.maxSeq;
  for (let i = 0; i < 50; i++) {
    const page = await api('GET', `/api/kvc/events?since=${since}&limit=1000`);
    events.list.push(...page);
    if (page.length) since = page[page.length - 1].seq;
    if (page.length < 1000) break;
  }
  events.maxSeq = since;
  events.list = events.list.slice(-500);
  events.loaded = true;
}

const SEV = { info: 'ℹ', warning: '⚠', error: '✖', user: '👤' };
function eventRows(list) {
  return list.slice().reverse().map((e) => `<tr data-seq="${e.seq}" data-type="${esc(e.type)}" data-object="${esc(e.object ?? '')}">
    <td class="sev ${esc(e.severity)}" title="${esc(e.severity)}">${SEV[e.severity] || ''}</td><td>${esc(fmtDateTime(e.time))}</td>
    <td>${esc(e.message ?? '')}</td><td>${esc(e.type)}</td><td>${objLink(e.object)}</td><td>${esc(e.user ?? '')}</td></tr>`).join('')
    || '<tr><td colspan="6" class="muted">No events.</td></tr>';
}
const fmtDateTime = (t) => (t ? new Date(t).toLocaleString() : '');

async function pageEvents() {
  try { await loadEvents(); } catch (e) { return setPage(`<h1>Events</h1><p class="error">${esc(e.message)}</p>`); }
  setPage(`<h1>Events</h1><div class="subtitle">The most recent events, newest first; new ones appear as they happen.</div>
    <div class="filter"><input id="event-filter" placeholder="Filter by text, type or object" autocomplete="off"></div>
    <table class="grid" id="events-table"><thead><tr><th></th><th>Time</th><th>Description</th><th>Type</th><th>Object</th><th>User</th></tr></thead>
    <tbody id="event-rows"></tbody></table>`);
  const draw = () => {
    const f = ($('#event-filter')?.value || '').toLowerCase();
    const list = f ? events.list.filter((e) => `${e.message} ${e.type} ${e.object} ${nameOf(e.object)} ${e.user}`.toLowerCase().includes(f)) : events.list;
    $('#event-rows').innerHTML = eventRows(list.slice(-300));
  };
  $('#event-filter').oninput = draw;
  draw();
  pageEvents.redraw = draw;
  pageCleanup = () => { pageEvents.redraw = null; };
}

async function fetchAlarms() {
  const al = await api('GET', '/api/kvc/alarms');
  return { definitions: al?.definitions || [], triggered: al?.triggered || [] };
}

async function pageAlarms() {
  let al;
  try { al = await fetchAlarms(); } catch (e) { return setPage(`<h1>Alarms</h1><p class="error">${esc(e.message)}</p>`); }
  const defName = (id) => al.definitions.find((d) => d.alarm === id)?.name || id;
  setPage(`<h1>Alarms</h1><div class="subtitle">Triggered alarms and the alarm definitions</div>
    <h2 class="section">Triggered</h2>
    <table class="grid" id="alarms-triggered"><thead><tr><th>Object</th><th>Alarm</th><th>Status</th><th>Triggered</th><th>Message</th><th></th></tr></thead><tbody>
    ${al.triggered.map((a) => `<tr><td>${objLink(a.object)}</td><td>${esc(a.name || defName(a.alarm))}</td><td>${pill(a.status)}</td>
      <td>${esc(fmtDateTime(a.time))}</td><td>${esc(a.message ?? '')}</td>
      <td>${a.acknowledged ? '<span class="muted">acknowledged</span>' : `<button class="small" data-ack="${esc(a.alarm)}" data-obj="${esc(a.object)}">Acknowledge</button>`}</td></tr>`).join('')
      || '<tr><td colspan="6" class="muted">No triggered alarms.</td></tr>'}
    </tbody></table>
    <h2 class="section">Definitions</h2>
    <table class="grid"><thead><tr><th>Name</th><th>Object type</th><th>Trigger</th><th>Severity</th><th>Enabled</th></tr></thead><tbody>
    ${al.definitions.map((d) => `<tr><td title="${esc(d.description)}">${esc(d.name)}</td><td>${esc(d.object_type)}</td>
      <td>${d.event_type ? esc(d.event_type) : `${esc(d.metric)} &gt; ${esc(d.threshold)}`}</td><td>${pill(d.severity)}</td><td>${d.enabled ? 'yes' : 'no'}</td></tr>`).join('')}
    </tbody></table>`);
  document.querySelectorAll('[data-ack]').forEach((b) => {
    b.onclick = async () => {
      try { await api('POST', `/api/kvc/alarms/${b.dataset.ack}?action=acknowledge`, { object: b.dataset.obj }); } catch (e) { toast(`Acknowledge failed: ${e.message}`); }
      route();
    };
  });
}

async function updateAlarmBadge() {
  try {
    const al = await fetchAlarms();
    const n = al.triggered.filter((a) => !a.acknowledged && a.status !== 'green').length;
    const b = $('#alarm-count');
    b.textContent = n;
    b.classList.toggle('hidden', !n);
  } catch { /* not fatal */ }
}

/* ---------- wizards ---------- */

function openVmWizard() {
  const d = $('#dlg-vm');
  const sel = $('#vm-placement');
  $('#vm-form').reset();
  sel.innerHTML = [
    ...inv.clusters.map((c) => `<option value="cluster:${esc(c.cluster)}">Cluster ${esc(c.name)}</option>`),
    ...inv.hosts.filter((h) => h.connection_state === 'CONNECTED').map((h) => `<option value="host:${esc(h.host)}">Host ${esc(h.name)}</option>`),
  ].join('');
  $('#vm-datastore').innerHTML = inv.datastores.map((s) => `<option value="${esc(s.datastore)}">${esc(s.name)} (${fmtBytes(s.free_space || 0)} free)</option>`).join('') || '<option value="">(default)</option>';
  $('#vm-network').innerHTML = '<option value="">(none)</option>' + inv.networks.map((n) => `<option value="${esc(n.network)}">${esc(n.name)}</option>`).join('');
  if (inv.networks.length) $('#vm-network').value = inv.networks[0].network;
  let step = 1;
  const show = () => {
    d.querySelectorAll('.step').forEach((s) => s.classList.toggle('hidden', +s.dataset.step !== step));
    d.querySelectorAll('.steps li').forEach((s) => { s.classList.toggle('on', +s.dataset.step === step); s.classList.toggle('done', +s.dataset.step < step); });
    $('#vm-back').disabled = step === 1;
    $('#vm-next').classList.toggle('hidden', step === 3);
    $('#vm-finish').classList.toggle('hidden', step !== 3);
    if (step === 3) {
      $('#vm-review').innerHTML = kv([['Name', esc($('#vm-name').value)], ['Compute resource', esc(sel.selectedOptions[0]?.text)],
        ['Datastore', esc($('#vm-datastore').selectedOptions[0]?.text)], ['Guest OS', esc($('#vm-guest').selectedOptions[0]?.text)],
        ['vCPUs', esc($('#vm-cpus').value)], ['Memory', `${esc($('#vm-mem').value)} MiB`], ['Disk', `${esc($('#vm-disk').value)} GiB`],
        ['Network', esc($('#vm-network').selectedOptions[0]?.text)], ['Power on', $('#vm-poweron').checked ? 'yes' : 'no']]).replace(/^<dl class="kv">|<\/dl>$/g, '');
    }
  };
  $('#vm-error').classList.add('hidden');
  $('#vm-finish').disabled = false;
  $('#vm-next').onclick = () => {
    const cur = d.querySelector(`.step[data-step="${step}"]`);
    for (const i of cur.querySelectorAll('input, select')) if (!i.reportValidity()) return;
    if (step === 1 && !sel.value) {
      const el = $('#vm-error'); el.textContent = 'There is no connected host or cluster to place the VM on.'; el.classList.remove('hidden');
      return;
    }
    step = Math.min(3, step + 1); show();
  };
  $('#vm-back').onclick = () => { step = Math.max(1, step - 1); show(); };
  $('#vm-finish').onclick = async () => {
    const [kind, target] = sel.value.split(':');
    const disk = +$('#vm-disk').value;
    const spec = {
      name: $('#vm-name').value, guest_OS: $('#vm-guest').value,
      placement: { [kind]: target, ...($('#vm-datastore').value ? { datastore: $('#vm-datastore').value } : {}) },
      cpu: { count: +$('#vm-cpus').value }, memory: { size_MiB: +$('#vm-mem').value },
      ...(disk ? { disks: [{ new_vmdk: { capacity: disk * 1024 * 1024 * 1024 } }] } : {}),
      ...($('#vm-network').value ? { nics: [{ backing: { type: 'STANDARD_PORTGROUP', network: $('#vm-network').value } }] } : {}),
    };
    $('#vm-finish').disabled = true;
    try {
      const id = await api('POST', '/api/vcenter/vm', spec);
      d.close();
      toast(`Created virtual machine ${spec.name}`);
      if ($('#vm-poweron').checked) {
        const task = await api('POST', `/api/vcenter/vm/${id}/power?action=start&vmw-task=true`).catch((e) => toast(`Power on failed: ${e.message}`));
        if (typeof task === 'string') trackTask(task);
      }
      await loadInventory();
      location.hash = `#/vm/${id}`;
    } catch (e) {
      const el = $('#vm-error'); el.textContent = e.message; el.classList.remove('hidden');
    } finally {
      $('#vm-finish').disabled = false;
    }
  };
  step = 1; show();
  d.showModal();
  $('#vm-name').focus();
}

// Add host: the first attempt asks for thumbprint verification without a
// thumbprint; vpxd answers with the host's certificate thumbprint, which the
// administrator checks and confirms before the second attempt sends it.
function openHostWizard() {
  const d = $('#dlg-host');
  $('#host-folder').innerHTML = [
    ...inv.clusters.map((c) => `<option value="${esc(c.cluster)}">Cluster ${esc(c.name)}</option>`),
    ...inv.datacenters.map((x) => `<option value="${esc(x.datacenter)}">Datacenter ${esc(x.name)}</option>`),
  ].join('');
  $('#host-form').reset();
  $('#host-thumb').classList.add('hidden');
  $('#host-error').classList.add('hidden');
  let thumbprint = null;
  const submit = $('#host-submit');
  submit.textContent = 'Next';
  submit.disabled = false;
  d.querySelectorAll('#host-form input, #host-form select').forEach((i) => { i.oninput = () => { if (thumbprint) { thumbprint = null; $('#host-thumb').classList.add('hidden'); submit.textContent = 'Next'; } }; });
  submit.onclick = async () => {
    for (const i of d.querySelectorAll('input')) if (!i.reportValidity()) return;
    $('#host-error').classList.add('hidden');
    const folder = $('#host-folder').value;
    const spec = {
      hostname: $('#host-name').value, port: +$('#host-port').value, user_name: $('#host-user').value,
      password: $('#host-password').value, ...(folder ? { folder } : {}),
      thumbprint_verification: 'THUMBPRINT', ...(thumbprint ? { thumbprint } : {}),
    };
    submit.disabled = true;
    submit.textContent = thumbprint ? 'Adding…' : 'Connecting…';
    try {
      const id = await api('POST', '/api/vcenter/host', spec);
      d.close();
      toast(`Host ${spec.hostname} added`);
      await loadInventory();
      if (typeof id === 'string') location.hash = `#/host/${id}`;
    } catch (e) {
      const arg = e.body?.messages?.[0]?.args?.[0];
      if (!thumbprint && e.status === 400 && /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/i.test(arg || '')) {
        thumbprint = arg;
        $('#host-thumb-value').textContent = thumbprint;
        $('#host-thumb').classList.remove('hidden');
        submit.textContent = 'Trust and add';
      } else {
        const el = $('#host-error'); el.textContent = e.message; el.classList.remove('hidden');
        submit.textContent = thumbprint ? 'Trust and add' : 'Next';
      }
    } finally {
      submit.disabled = false;
    }
  };
  d.showModal();
  $('#host-name').focus();
}

$('#btn-new-vm').onclick = openVmWizard;
$('#btn-add-host').onclick = openHostWizard;

/* ---------- routing and live updates ---------- */

async function route() {
  const [, kind, id, tab] = (location.hash || '#/').split('/');
  document.querySelectorAll('.topnav a').forEach((a) => a.classList.toggle('on', a.dataset.nav === (['tasks', 'events', 'alarms'].includes(kind) ? kind : 'home')));
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

// An event arrived: reload the inventory, then redraw what shows it.  The
// console and the charts keep their state; the events page appends.
function refreshSoon() {
  clearTimeout(refreshSoon.timer);
  refreshSoon.timer = setTimeout(async () => {
    try { await loadInventory(); } catch { return; }
    const [, kind, , tab] = (location.hash || '#/').split('/');
    if (kind === 'events') pageEvents.redraw?.();
    else if (!((kind === 'vm' || kind === 'host') && (tab === 'console' || tab === 'monitor')) && pageKey === location.hash) route();
    else if (kind === 'vm' && tab) refreshVmHeader();
    updateAlarmBadge();
    pollTasks();
  }, 150);
}

// On the console and monitor tabs only the title and buttons follow the state.
async function refreshVmHeader() {
  const [, , id] = location.hash.split('/');
  const v = inv.vms.find((x) => x.vm === id);
  if (!v) return;
  const st = v.power_state;
  const set = (sel, dis) => { const b = $(sel); if (b) b.disabled = dis; };
  set('#act-start', st === 'POWERED_ON');
  set('#act-stop', st === 'POWERED_OFF');
  set('#act-suspend', st !== 'POWERED_ON');
  set('#act-reset', st !== 'POWERED_ON');
  set('#act-delete', st !== 'POWERED_OFF');
  const sub = $('.subtitle .state');
  if (sub) sub.outerHTML = pill(st);
}

function onEvent(e) {
  if (events.loaded && e.seq > events.maxSeq) {
    events.list.push(e);
    events.list = events.list.slice(-500);
    events.maxSeq = e.seq;
  }
  refreshSoon();
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
    $('#live').title = 'Receiving live updates from the event stream';
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
        const data = chunk.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        if (!data) continue;
        try { onEvent(JSON.parse(data)); } catch { refreshSoon(); }
      }
    }
  } catch { /* fall through to retry */ }
  if (live === ctl && session.token) {
    $('#live').classList.remove('on');
    $('#live').title = 'Live updates interrupted; reconnecting';
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
  events.list = []; events.loaded = false; events.maxSeq = 0;
  tasks.clear();
  route();
  pollTasks();
  updateAlarmBadge();
  startLive();
}

if (session.token) start(); else showLogin();
