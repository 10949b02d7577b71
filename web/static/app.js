// app.js drives the iproc debug page (ids documented at the top of
// index.html). All text from the server goes into the DOM through
// textContent or attributes, never through innerHTML.
import {IprocClient} from './iproc-client.js';

const TOPICS = ['outbound.campaignGroupState', 'outbound.contactProcessed', 'callback.status', 'dialer.cdr', 'system.sourceHealth'];
const TEAM_PREFIX = 'report.teamstatus.';
const LOG_MAX = 500;
const STATUS_CLASS = {ready: 'st-ready', not_ready: 'st-not-ready', ACW: 'st-acw', logged_out: 'st-logged-out'};
/** Words for the protocol's agent states. */
const STATUS_LABEL = {ready: 'Ready', not_ready: 'Not ready', ACW: 'After call work', logged_out: 'Logged out'};
/** Words for the reasons the server sets, the demo's reason codes, and
 * (added at login from getCapabilities' reasonCodes) the directory's. */
const REASON_LABEL = {
  login: 'Just logged in', closed: 'Logged out', expired: 'Session expired', override: 'Signed in elsewhere',
  1: 'Break', 32: 'Training',
};
/** Failures in plain words; the code stays in the element's title. */
const FAILURE_TEXT = {
  'session.invalidCredentials': 'Wrong agent id or password.',
  'rate.limited': 'Too many attempts: wait a minute and try again.',
  'session.unknownModel': 'The server does not offer this call model.',
  'session.notResumable': 'The session could not be resumed: log in again.',
  'session.required': 'Log in first.',
  'auth.forbidden': 'You are not allowed to see this.',
  'report.notFound': 'Nothing is known about this call id.',
  'server.unavailable': 'The server cannot do this right now: try again.',
  'server.internal': 'The server failed to do this.',
};
/** Commands that act on the session: the console fills in their resource. */
const SESSION_COMMANDS = new Set(['getState', 'setState', 'subscribe', 'unsubscribe', 'closeSession']);
/** Events that belong to a call, with the field holding its call id. */
const CALL_ID_FIELD = {
  'outbound.contactProcessed': (d) => d?.GSW_CALL_ATTEMPT_GUID,
  'callback.status': (d) => d?._service_id,
  'dialer.cdr': (d) => d?.internal_call_ref || d?.custom_call_ref,
};

const $ = (id) => document.getElementById(id);
const client = new IprocClient();

/**
 * el builds an element. props sets attributes ('class' and 'dataset' are
 * special); string children become text nodes, so data is never parsed as HTML.
 */
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const pretty = (v) => JSON.stringify(v, null, 2);
const failureText = (r) => (r.failure ? FAILURE_TEXT[r.failure.code] ?? r.failure.message : r.message ?? r.result);
const statusLabel = (s) => STATUS_LABEL[s] ?? String(s ?? '');
const reasonLabel = (r) => (r === '' || r === undefined ? '' : REASON_LABEL[r] ?? `Reason ${r}`);

/** showError puts a failure in plain words into element e, its code in the title. */
function showError(e, r) {
  e.textContent = r ? failureText(r) : 'Not connected to the server.';
  e.title = r?.failure?.code ?? '';
}

/** hms formats milliseconds as H:MM:SS. */
function hms(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const mm = String(Math.floor(s / 60) % 60).padStart(2, '0');
  return `${Math.floor(s / 3600)}:${mm}:${String(s % 60).padStart(2, '0')}`;
}

/** call sends a request; failures and transport errors are logged, not thrown. */
async function call(command, data = {}, resource = undefined) {
  try {
    const r = await client.request(command, data, resource);
    if (r.result === 'failure') note('client.error', {command, failure: r.failure});
    return r;
  } catch (err) {
    note('client.error', {command, error: err.message});
    return null;
  }
}

// ---- status, service info, session ----------------------------------------

const setStatus = (text) => { $('status').textContent = text; };
const agentText = () => `logged in as ${client.session.agentId}`;
const clock = (t) => new Date(t).toTimeString().slice(0, 8);

/**
 * banner tells the user the connection is lost: since when the data shown
 * is stale, and when the next try is. Stale data is greyed (body.stale)
 * and its time-in-state counters stop.
 */
const banner = {lostAt: 0, retryAt: 0, timer: 0};

function showBanner() {
  const left = Math.max(0, Math.ceil((banner.retryAt - Date.now()) / 1000));
  $('conn-banner-text').textContent = `Connection lost — data as of ${clock(banner.lostAt)}, ` +
    (banner.retryAt > Date.now() ? `retrying in ${left} s` : 'reconnecting…');
}

function connectionLost(s) {
  if (!banner.lostAt) banner.lostAt = Date.now();
  if (s.retryAt) banner.retryAt = s.retryAt;
  document.body.classList.add('stale');
  $('conn-banner').hidden = false;
  showBanner();
  clearInterval(banner.timer);
  banner.timer = setInterval(showBanner, 250);
}

function connectionBack() {
  banner.lostAt = banner.retryAt = 0;
  clearInterval(banner.timer);
  document.body.classList.remove('stale');
  $('conn-banner').hidden = true;
}

$('retry-now').addEventListener('click', () => client.retryNow());

client.on('state', (s) => {
  note('client.state', s);
  if (s.state === 'connecting') {
    setStatus(s.attempt ? 'reconnecting…' : 'connecting…');
    if (banner.lostAt) { banner.retryAt = 0; showBanner(); }
  } else if (s.state === 'closed') {
    setStatus('disconnected');
    connectionLost(s);
  } else {
    setStatus(client.session ? agentText() : 'connected');
    connectionBack();
    if (s.state === 'open') loadCapabilities();
  }
});

/** loadCapabilities shows the model field only when there is a choice. */
async function loadCapabilities() {
  const r = await call('getCapabilities');
  if (r?.result === 'success' && r.data?.reasonCodes && typeof r.data.reasonCodes === 'object') {
    Object.assign(REASON_LABEL, r.data.reasonCodes);
  }
  if (typeof r?.data?.sourceQuiet === 'string') $('sources-quiet').textContent = r.data.sourceQuiet;
  const models = r?.result === 'success' && Array.isArray(r.data?.models) ? r.data.models : [];
  if (models.length === 0) return;
  $('model').replaceChildren(...models.map((m) => el('option', {value: m}, m)));
  $('model-field').hidden = models.length < 2;
}

client.on('resumed', (d) => {
  note('client.resumed', d);
  if (!d.recovered) rereadReports(); // events were missed: start the reports over
});

client.on('sessionlost', (r) => note('client.sessionlost', r.failure ?? r));

client.on('session', (s) => {
  for (const id of ['logout', 'set-state']) $(id).disabled = !s;
  $('login').disabled = Boolean(s);
  if (!s) {
    setStatus(client.connected ? 'connected' : 'disconnected');
    clearReports();
    return;
  }
  $('login-error').textContent = '';
  $('password').value = '';
  $('id-token').value = '';
  setStatus(agentText());
  startSession(s);
});

/** startSession subscribes to every topic and begins the team status report. */
async function startSession(s) {
  await call('subscribe', {topics: TOPICS}, s.id);
  clearTeams();
  await call('report.teamstatus.begin', {agentId: s.agentId});
  const r = await call('getState', {}, s.id);
  if (r?.result === 'success') showMyState(r.data);
  campaigns.load(true);
  sources.load(true);
}

async function rereadReports() {
  const s = client.session;
  if (!s) return;
  await call('report.teamstatus.end', {agentId: s.agentId});
  clearTeams();
  await call('report.teamstatus.begin', {agentId: s.agentId});
  if (campaigns.loaded) campaigns.load();
  if (sources.loaded) sources.load();
}

function showServiceInfo(data) {
  const dl = $('service-info');
  dl.replaceChildren();
  for (const [k, v] of Object.entries(data ?? {})) {
    dl.append(el('dt', {}, k), el('dd', {}, typeof v === 'string' ? v : JSON.stringify(v)));
  }
}

function showMyState(d) {
  const text = d?.reason ? `${statusLabel(d.state)} (${reasonLabel(d.reason)})` : d?.state ? statusLabel(d.state) : '–';
  $('my-state').textContent = text;
  $('my-state').title = d?.reason ? `${d.state}, reason ${d.reason}` : d?.state ?? '';
  $('my-state').className = STATUS_CLASS[d?.state] ?? '';
}

/** clearReports empties what belonged to the session that ended. */
function clearReports() {
  $('my-state').textContent = '–';
  $('my-state').className = '';
  clearTeams();
  $('journey').replaceChildren();
  campaigns.clear();
  sources.clear();
  $('login-error').textContent = '';
  $('console-output').textContent = '';
  $('console-output').className = 'output';
}

// ---- login, override, own state --------------------------------------------

let pendingLogin = null; // the prepareSession data awaiting an override answer

async function login(data) {
  $('login-error').textContent = '';
  const r = await call('prepareSession', data);
  if (!r) { showError($('login-error'), null); return; }
  if (r.result === 'confirm') {
    pendingLogin = data;
    $('override-message').textContent = `Agent ${data.agent.id} is signed in elsewhere. Sign in here and end the other session?`;
    $('override-message').title = r.message ?? '';
    $('override-dialog').showModal();
  } else if (r.result === 'failure') {
    showError($('login-error'), r);
  }
  // success is handled by the client's 'session' event
}

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  login({
    model: $('model').value || 'uccx',
    override: false,
    agent: agentCredentials(),
  });
});

/** agentCredentials is {id, token} when an ID token is pasted, else {id, password}. */
function agentCredentials() {
  const id = $('agent-id').value.trim();
  const token = $('id-token').value.trim();
  return token ? {id, token} : {id, password: $('password').value};
}

$('override-yes').addEventListener('click', () => {
  $('override-dialog').close();
  if (pendingLogin) login({...pendingLogin, override: true});
  pendingLogin = null;
});

$('override-no').addEventListener('click', () => {
  $('override-dialog').close();
  pendingLogin = null;
});

$('logout').addEventListener('click', () => {
  if (client.session) call('closeSession', {}, client.session.id);
});

$('set-state').addEventListener('click', async () => {
  if (!client.session) return;
  const data = {state: $('state-select').value};
  const reason = $('state-reason').value.trim();
  if (reason) data.reason = reason;
  await call('setState', data, client.session.id);
});

// ---- console ----------------------------------------------------------------

const sid = () => client.session?.id ?? '';
const PRESETS = {
  getCapabilities: () => ({command: 'getCapabilities', data: {}}),
  ping: () => ({command: 'ping', data: {}}),
  getState: () => ({command: 'getState', data: {}, resource: sid()}),
  ready: () => ({command: 'setState', data: {state: 'ready'}, resource: sid()}),
  not_ready: () => ({command: 'setState', data: {state: 'not_ready', reason: '1'}, resource: sid()}),
  subscribe: () => ({command: 'subscribe', data: {topics: TOPICS}, resource: sid()}),
  campaigngroups: () => ({command: 'report.campaigngroups', data: {}}),
};

async function consoleSend() {
  const out = $('console-output');
  let req;
  try {
    req = JSON.parse($('console-input').value);
  } catch (err) {
    out.className = 'output fail';
    out.textContent = `invalid JSON: ${err.message}`;
    return;
  }
  if (req === null || typeof req !== 'object' || typeof req.command !== 'string') {
    out.className = 'output fail';
    out.textContent = 'the request must be an object with a string "command"';
    return;
  }
  if (!req.resource && SESSION_COMMANDS.has(req.command) && client.session) {
    req.resource = client.session.id;
    $('console-input').value = pretty(req);
  }
  const t0 = performance.now();
  try {
    const r = await client.request(req.command, req.data ?? {}, req.resource || undefined);
    out.className = `output ${r.result === 'success' ? 'ok' : 'fail'}`;
    out.textContent = `// ${r.result} in ${Math.round(performance.now() - t0)} ms\n${pretty(r)}`;
  } catch (err) {
    out.className = 'output fail';
    out.textContent = `error: ${err.message}`;
  }
}

$('console-send').addEventListener('click', consoleSend);
$('console-input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); consoleSend(); }
});
for (const b of document.querySelectorAll('.preset')) {
  b.addEventListener('click', () => {
    $('console-input').value = pretty(PRESETS[b.dataset.preset]());
    consoleSend();
  });
}

// ---- event log ----------------------------------------------------------------

const log = {paused: false, held: [], filter: ''};

/** note logs a client-side happening as an entry named name. */
function note(name, data) {
  addLog({name, data});
}

function addLog(ev) {
  const entry = {time: new Date(), ...ev};
  if (log.paused) {
    log.held.push(entry);
    if (log.held.length > LOG_MAX) log.held.shift();
    $('log-count').textContent = `${log.held.length} held`;
    return;
  }
  renderLog(entry);
}

function renderLog({time, name, seq, data}) {
  const json = JSON.stringify(data ?? {});
  const callId = CALL_ID_FIELD[name]?.(data);
  const open = callId ? el('button', {type: 'button', class: 'journey-link', title: `call journey of ${callId}`}, 'Journey') : null;
  open?.addEventListener('click', () => lookUpJourney(String(callId)));
  const li = el('li', {class: name.startsWith('client.') ? 'event local' : 'event', dataset: {name}},
    el('details', {},
      el('summary', {},
        el('time', {}, time.toISOString().slice(11, 23)), ' ',
        el('span', {class: 'name'}, name), ' ',
        seq !== undefined ? el('span', {class: 'seq'}, `#${seq}`) : null, ' ',
        el('code', {}, json.length > 160 ? `${json.slice(0, 160)}…` : json)),
      open,
      el('pre', {}, pretty(data ?? {}))));
  li.hidden = !matchesFilter(name);
  const list = $('event-log');
  list.prepend(li);
  while (list.children.length > LOG_MAX) list.lastElementChild.remove();
}

const matchesFilter = (name) => name.toLowerCase().includes(log.filter);

$('log-filter').addEventListener('input', (e) => {
  log.filter = e.target.value.trim().toLowerCase();
  for (const li of $('event-log').children) li.hidden = !matchesFilter(li.dataset.name);
});

$('log-pause').addEventListener('click', (e) => {
  log.paused = !log.paused;
  e.target.textContent = log.paused ? 'Resume' : 'Pause';
  e.target.setAttribute('aria-pressed', String(log.paused));
  if (!log.paused) {
    for (const entry of log.held.splice(0)) renderLog(entry);
    $('log-count').textContent = '';
  }
});

$('log-clear').addEventListener('click', () => {
  $('event-log').replaceChildren();
  log.held.length = 0;
  $('log-count').textContent = '';
});

// ---- team status ----------------------------------------------------------------

const teams = new Map(); // teamId -> tbody

function clearTeams() {
  for (const tbody of teams.values()) tbody.remove();
  teams.clear();
}

function teamBody(team) {
  let tbody = teams.get(team.teamId);
  if (!tbody) {
    tbody = el('tbody', {dataset: {team: team.teamId}},
      el('tr', {class: 'team-head'}, el('th', {colspan: 5})));
    teams.set(team.teamId, tbody);
    $('team-table').append(tbody);
  }
  if (team.teamName !== undefined || !tbody.rows[0].cells[0].textContent) {
    tbody.rows[0].cells[0].textContent = `${team.teamName ?? ''} (${team.teamId})`;
  }
  return tbody;
}

const memberRow = (tbody, id) => [...tbody.rows].find((r) => r.dataset.member === id);

/**
 * upsertMember adds or updates a member row. live is true for a change seen
 * as it happened; in a snapshot (teamadded, memberadded) the state may be
 * older than the page, so its time in state is shown as a lower bound (≥).
 */
function upsertMember(tbody, m, live) {
  const id = String(m.memberId);
  let row = memberRow(tbody, id);
  if (!row) {
    row = el('tr', {dataset: {member: id}},
      ...['name', 'type', 'status', 'reason', 'time'].map((c) => el('td', {class: c})));
    tbody.append(row);
  }
  const cell = (c) => row.querySelector(`.${c}`);
  if (m.memberName !== undefined || !cell('name').textContent) cell('name').textContent = `${m.memberName ?? ''} (${id})`;
  if (m.memberType !== undefined) cell('type').textContent = m.memberType;
  const reason = m.reason ?? '';
  if (m.status !== undefined && (m.status !== row.dataset.status || reason !== row.dataset.reason)) {
    row.dataset.status = m.status;
    row.dataset.reason = reason;
    const since = Date.parse(m.since ?? '');
    row.dataset.since = String(Number.isNaN(since) ? Date.now() : since);
    row.dataset.approx = !live && Number.isNaN(since) ? '≥' : '';
    row.className = STATUS_CLASS[m.status] ?? 'st-other';
    cell('status').textContent = statusLabel(m.status);
    cell('reason').textContent = reasonLabel(reason);
    cell('reason').title = reason ? `reason code ${reason}` : '';
    cell('time').textContent = row.dataset.approx + hms(Date.now() - Number(row.dataset.since));
  }
}

function applyTeamEvent(name, data) {
  const team = data?.team;
  if (!team || team.teamId === undefined) return;
  team.teamId = String(team.teamId);
  const members = Array.isArray(team.members) ? team.members : [];
  switch (name.slice(TEAM_PREFIX.length)) {
    case 'teamadded': {
      const tbody = teamBody(team);
      while (tbody.rows.length > 1) tbody.rows[1].remove();
      members.forEach((m) => upsertMember(tbody, m, false));
      break;
    }
    case 'memberadded':
    case 'memberstatuschanged':
      members.forEach((m) => upsertMember(teamBody(team), m, name.endsWith('memberstatuschanged')));
      break;
    case 'memberremoved': {
      const tbody = teams.get(team.teamId);
      if (tbody) members.forEach((m) => memberRow(tbody, String(m.memberId))?.remove());
      break;
    }
    case 'teamchanged':
      if (teams.has(team.teamId)) teamBody(team);
      break;
    case 'teamremoved':
      teams.get(team.teamId)?.remove();
      teams.delete(team.teamId);
      break;
  }
}

setInterval(() => {
  if (document.body.classList.contains('stale')) return; // stale data: the counters stop
  const now = Date.now();
  for (const row of $('team-table').querySelectorAll('tr[data-since]')) {
    row.querySelector('.time').textContent = row.dataset.approx + hms(now - Number(row.dataset.since));
  }
}, 1000);

// ---- call journey ----------------------------------------------------------------

/** stepMs is a step's duration: DurationMs, else Duration parsed from HH:MM:SS. */
function stepMs(step) {
  if (Number.isFinite(step.DurationMs)) return step.DurationMs;
  const [h, m, s] = String(step.Duration ?? '').split(':').map(Number);
  return [h, m, s].every(Number.isFinite) ? ((h * 60 + m) * 60 + s) * 1000 : 0;
}

/** kind picks one of six bar colours from the device type. */
function kind(type) {
  let h = 0;
  for (const ch of String(type ?? '')) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `kind-${h % 6}`;
}

/** dur formats a step's length in one format: H:MM:SS, or M:SS under an hour. */
function dur(ms) {
  const t = hms(ms);
  return t.startsWith('0:') ? t.slice(2) : t;
}

function showJourney(callId, steps) {
  const total = steps.reduce((t, s) => t + stepMs(s), 0);
  const timeline = el('div', {class: 'timeline', role: 'img', 'aria-label': `call journey, ${dur(total)} in total`});
  for (const s of steps) {
    const label = `${s.DeviceType ?? ''} ${s.Device ?? ''}`.trim();
    const bar = el('div', {class: `bar ${kind(s.DeviceType)}`, title: `${label} — ${s.Description ?? ''} (${dur(stepMs(s))})`},
      el('span', {}, label), el('small', {}, dur(stepMs(s))));
    bar.style.flexGrow = String(total > 0 ? Math.max(stepMs(s), total / 100) : 1);
    // A label that cannot fit is left out (the tooltip and the table have it).
    if (total > 0 && stepMs(s) / total < 0.08) bar.classList.add('narrow');
    timeline.append(bar);
  }
  const table = el('table', {class: 'journey-table'},
    el('thead', {}, el('tr', {}, ...['#', 'Device', 'Type', 'What happened', 'Duration'].map((c) => el('th', {}, c)))),
    el('tbody', {}, ...steps.map((s, i) => el('tr', {},
      el('td', {}, i + 1), el('td', {}, s.Device ?? ''), el('td', {}, s.DeviceType ?? ''),
      el('td', {}, s.Description ?? ''), el('td', {class: 'num'}, dur(stepMs(s)))))));
  $('journey').replaceChildren(
    el('p', {id: 'journey-call'}, 'Call ', el('code', {}, steps[0]?.CallId ?? callId), ` — ${steps.length} steps, ${dur(total)} in total`),
    timeline, el('div', {class: 'scroll'}, table));
}

/** lookUpJourney shows the journey of call id. */
async function lookUpJourney(id) {
  $('journey-id').value = id;
  $('journey').replaceChildren(el('p', {}, 'loading…'));
  $('journey').scrollIntoView({block: 'nearest'});
  const r = await call('report.calljourney', {CallId: id});
  if (r?.result === 'success') showJourney(id, r.data?.CallJourney ?? []);
  else showError($('journey').appendChild(el('p', {class: 'error'})), r);
}

$('journey-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const id = $('journey-id').value.trim();
  if (id) lookUpJourney(id);
});

// ---- campaign groups ----------------------------------------------------------------

const campaigns = keyedReport('report.campaigngroups', 'campaigns', (d) => d.CampaignGroups,
  (g) => g.GSW_CAMPAIGN_GROUP_GUID, () => showCampaigns());

/** when formats GSW_DATE_TIME (UTC seconds with milliseconds) as an ISO-like UTC time. */
function when(v) {
  const secs = Number(v);
  if (v === undefined || v === '' || !Number.isFinite(secs)) return String(v ?? '');
  return new Date(secs * 1000).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

function showCampaigns() {
  const rows = [...campaigns.byKey.values()]
    .sort((a, b) => String(a.GSW_CAMPAIGN_GROUP_NAME).localeCompare(String(b.GSW_CAMPAIGN_GROUP_NAME)));
  $('campaigns').replaceChildren(el('div', {class: 'scroll'}, el('table', {},
    el('thead', {}, el('tr', {}, ...['GUID', 'Name', 'State', 'Date'].map((c) => el('th', {}, c)))),
    el('tbody', {}, ...rows.map((g) => el('tr', {dataset: {guid: g.GSW_CAMPAIGN_GROUP_GUID}},
      el('td', {class: 'mono'}, g.GSW_CAMPAIGN_GROUP_GUID),
      el('td', {}, g.GSW_CAMPAIGN_GROUP_NAME ?? ''),
      el('td', {}, g.GSW_CAMPAIGN_GROUP_STATE ?? ''),
      el('td', {}, when(g.GSW_DATE_TIME))))))));
}

/**
 * keyedReport is a report shown as rows by key, read whole by command into
 * the element with id target: rows(data) lists them, key(row) names one,
 * show() draws them. load(quiet) reads it again; quiet leaves a refusal (an
 * agent's) unsaid and out of the event log, since the page asks for the
 * supervisors' reports at every login. set(row) applies a live event.
 */
function keyedReport(command, target, rows, key, show) {
  const rep = {
    loaded: false,
    byKey: new Map(),
    async load(quiet = false) {
      const r = quiet ? await client.request(command, {}).catch(() => null) : await call(command);
      if (r?.result !== 'success') {
        if (quiet && r?.failure?.code === 'auth.forbidden') {
          $(target).replaceChildren(el('p', {class: 'hint'}, 'For supervisors and team leads.'));
        } else if (!quiet) {
          const p = el('p', {class: 'error'});
          $(target).replaceChildren(p);
          showError(p, r);
        }
        return;
      }
      rep.loaded = true;
      rep.byKey.clear();
      for (const row of rows(r.data ?? {}) ?? []) rep.byKey.set(String(key(row)), row);
      show();
    },
    set(row) {
      rep.byKey.set(String(key(row)), row);
      show();
    },
    clear() {
      rep.loaded = false;
      rep.byKey.clear();
      $(target).replaceChildren();
    },
  };
  return rep;
}

$('campaigns-go').addEventListener('click', () => campaigns.load());

// ---- source health ----------------------------------------------------------------

const sources = keyedReport('report.sources', 'sources', (d) => d.sources, (s) => s.source, () => showSources());
/** Words for the source statuses. */
const SOURCE_STATUS_LABEL = {unknown: 'Not heard from yet', ok: 'OK', quiet: 'Quiet', down: 'Down'};

/** ago says how long before now the RFC 3339 time t was, e.g. "12 s ago". */
function ago(t) {
  const ms = Date.parse(t ?? '');
  if (Number.isNaN(ms)) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s} s ago` : `${dur(s * 1000)} ago`;
}

/** listText describes the dialer's Redis list, empty for other sources. */
function listText(s) {
  if (s.listLength === undefined) return '';
  const waiting = s.listLength > 0 ? `${s.listLength} waiting for ${dur((s.listNonEmptySeconds ?? 0) * 1000)}` : 'empty';
  return `${waiting}; ${s.deadLetters ?? 0} dead letters`;
}

function showSources() {
  const rows = [...sources.byKey.values()];
  $('sources').replaceChildren(el('div', {class: 'scroll'}, el('table', {},
    el('thead', {}, el('tr', {}, ...['Source', 'Status', 'Last seen', 'Per minute', 'Rejected', 'Retries', 'Dialer list']
      .map((c) => el('th', {}, c)))),
    el('tbody', {}, ...rows.map((s) => el('tr', {dataset: {source: s.source, status: s.status}, class: `src-${s.status}`},
      el('td', {class: 'mono'}, s.source),
      el('td', {class: 'status', title: s.reason || (s.since ? `since ${s.since}` : '')}, SOURCE_STATUS_LABEL[s.status] ?? s.status),
      el('td', {class: 'last-seen', title: s.lastSeen ?? ''}, ago(s.lastSeen)),
      el('td', {class: 'per-minute num'}, s.perMinute ?? 0),
      el('td', {class: 'rejected num'}, s.rejectedPerMinute ?? 0),
      el('td', {class: 'duplicates num'}, s.duplicatesPerMinute ?? 0),
      el('td', {class: 'list'}, listText(s))))))));
}

$('sources-go').addEventListener('click', () => sources.load());
setInterval(() => {
  if (sources.loaded && client.session && !document.body.classList.contains('stale')) sources.load(true);
}, 15000);

// ---- server events ----------------------------------------------------------------

client.on('*', (ev) => {
  addLog(ev);
  const {name, data} = ev;
  if (name === 'service.info') showServiceInfo(data);
  else if (name === 'session.stateChanged') showMyState(data);
  else if (name === 'session.ended') setStatus(`session ended (${reasonLabel(data?.reason ?? '') || 'unknown'})`);
  else if (name.startsWith(TEAM_PREFIX)) applyTeamEvent(name, data);
  else if (name === 'outbound.campaignGroupState' && data?.GSW_CAMPAIGN_GROUP_GUID !== undefined) {
    campaigns.set(data);
  } else if (name === 'system.sourceHealth' && data?.source !== undefined && sources.loaded) {
    sources.set(data);
  }
});

// For the browser's developer console (and browser tests):
// `await iproc.client.request('ping')`.
window.iproc = {client};

client.connect();
