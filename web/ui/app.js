// The PanelX dashboard: sign-in, the overview of the projects you may see,
// and a project's services, updated live from the API's watch stream.
// Hash routes: #/ (overview), #/projects/<name> (a project).

import { APIError, Watch, get, projectPath, token } from './api.js';
import { forget, h, keyed, later, timeEl } from './dom.js';

const main = document.getElementById('main');
const liveEl = document.getElementById('live');
const whoEl = document.getElementById('who');
const signoutBtn = document.getElementById('signout');
const alertEl = document.getElementById('alert');

let view = null; // the current page: {dispose()}
let routed = false;
let firstStatus = false;

// ---- states ----

// serviceState puts a service in one of the buckets the pages count, from
// what the controller wrote: Ready only when its Ready condition is True
// for the generation the user asked for (the phase is then Running).
export function serviceState(s) {
  const st = s.status || {};
  if (s.metadata.deletionTimestamp) return 'Deleting';
  if (st.phase === 'Degraded' || st.phase === 'Failed') return 'Degraded';
  const ready = (st.conditions || []).find((c) => c.type === 'Ready');
  if (ready && ready.status === 'True' && (st.observedGeneration || 0) === (s.metadata.generation || 0)) return 'Ready';
  return 'Progressing';
}

const GLYPH = { Ready: '✓', Progressing: '…', Degraded: '✕', Deleting: '–', Pending: '…', Unknown: '?' };

function badge(state, label = state) {
  return h('span', { class: 'badge s-' + state.toLowerCase() },
    h('span', { class: 'glyph', 'aria-hidden': 'true' }, GLYPH[state] || '•'), label);
}

function projectState(p) {
  const phase = (p.status && p.status.phase) || '';
  if (p.metadata.deletionTimestamp) return 'Deleting';
  if (phase === 'Ready') return 'Ready';
  if (phase === 'Degraded' || phase === 'Failed') return 'Degraded';
  return phase ? 'Progressing' : 'Pending';
}

function countStates(services) {
  const n = { Ready: 0, Progressing: 0, Degraded: 0, Deleting: 0 };
  for (const s of services) n[serviceState(s)]++;
  return n;
}

function countsEl(n, total) {
  if (total === 0) return h('span', { class: 'counts muted' }, 'no services');
  const parts = ['Ready', 'Progressing', 'Degraded'].map((state) =>
    h('span', { class: 'count s-' + state.toLowerCase() + (n[state] ? '' : ' zero') },
      h('span', { class: 'dot', 'aria-hidden': 'true' }), `${n[state]} ${state}`));
  if (n.Deleting) parts.push(h('span', { class: 'count s-deleting' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), `${n.Deleting} Deleting`));
  return h('span', { class: 'counts' }, parts);
}

const byName = (a, b) => a.metadata.name.localeCompare(b.metadata.name);

function markFirstStatus() {
  if (firstStatus) return;
  firstStatus = true;
  performance.mark('panelx:first-status');
}

// ---- chrome: live indicator, user, alerts ----

function setLive(s) {
  liveEl.className = 'live' + (s ? ' phase-' + s.phase : '');
  if (!s) {
    liveEl.textContent = '';
    return;
  }
  const text = {
    connecting: 'Connecting…',
    live: 'Live',
    retrying: s.error ? `Reconnecting (${s.error})…` : 'Reconnecting…',
  }[s.phase];
  liveEl.replaceChildren(h('span', { class: 'dot', 'aria-hidden': 'true' }), text);
}

function showAlert(text) {
  alertEl.textContent = text;
  alertEl.hidden = !text;
}

function errorBox(err, what) {
  const reason = err instanceof APIError ? err.reason : String(err && err.message ? err.message : err);
  return h('div', { class: 'problem', role: 'alert' },
    h('strong', {}, what ? `${what} — the API refused:` : 'The API refused:'), ' ', reason);
}

// authFailed: the API no longer takes the token (revoked, expired): back to
// the sign-in page, saying why.
function authFailed(err) {
  token.clear();
  route(`The API refused the token: ${err instanceof APIError ? err.reason : err}. Sign in again.`);
}

function isAuthError(e) {
  return e instanceof APIError && e.status === 401;
}

async function loadMe() {
  whoEl.textContent = '';
  try {
    const me = await get('api/v1/me');
    whoEl.textContent = me.userId + (me.admin ? ' (administrator)' : '');
    whoEl.title = 'Signed in as ' + me.userId + (me.project ? `, token limited to project ${me.project}` : '');
  } catch (e) {
    if (isAuthError(e)) authFailed(e);
    else if (e.name !== 'AbortError') showAlert('Could not read who you are: ' + (e.reason || e.message));
  }
}

// ---- sign-in ----

function signInView(message, notice) {
  setLive(null);
  whoEl.textContent = '';
  signoutBtn.hidden = true;
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'token-help' });
  const error = h('p', { id: 'signin-error', class: notice ? 'notice' : 'problem', role: 'alert', hidden: !message }, message || '');
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'signin', id: 'signin', novalidate: true },
    h('h1', { tabindex: '-1' }, 'Sign in to PanelX'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'help' },
      'Paste a PanelX API token: ', h('code', {}, 'panelx token create --user <id>'),
      ' prints one; on its first start the server writes one to ', h('code', {}, '<data dir>/admin-token'),
      ' (', h('code', {}, 'make run'), ' logs where). ',
      'It stays in this tab (sessionStorage) and goes only to this server\'s API, in the Authorization header.'),
    button,
    error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tok = input.value.trim();
    if (!tok) {
      error.textContent = 'Paste a token first.';
      error.hidden = false;
      input.focus();
      return;
    }
    button.disabled = true;
    error.hidden = true;
    error.className = 'problem';
    try {
      await get('api/v1/me', { tok });
      token.set(tok);
      input.value = '';
      route();
    } catch (e) {
      error.textContent = 'Sign-in refused: ' + (e instanceof APIError ? e.reason : e.message);
      error.hidden = false;
      input.select();
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(form);
  input.focus();
  return { dispose() {} };
}

// ---- overview ----

function overviewView() {
  const loading = h('p', { class: 'muted', 'aria-busy': 'true' }, 'Loading your projects…');
  const kpis = h('div', { class: 'kpis', hidden: true });
  const list = h('ul', { class: 'projects', 'aria-label': 'Projects' });
  const empty = h('div', { class: 'empty', hidden: true },
    h('p', {}, 'You have no projects yet (or none shared with you).'),
    h('p', {}, 'Create one with ', h('code', {}, 'panelx apply -f project.yaml'), '.'));
  const failed = h('div');
  const warnStatus = h('p', { class: 'muted' }, 'Loading…');
  const warnings = h('ol', { class: 'events', 'aria-label': 'Newest warning events' });
  main.replaceChildren(
    h('h1', { tabindex: '-1' }, 'Projects'),
    failed, loading, kpis, list, empty,
    h('section', { class: 'panel', 'aria-labelledby': 'warn-h' },
      h('h2', { id: 'warn-h' }, 'Newest warnings'), warnStatus, warnings));

  const ctl = new AbortController();
  let loadedEvents = false;

  const render = later(() => {
    if (!w.synced) return;
    loading.hidden = true;
    const projects = w.list('Project').sort(byName);
    const services = w.list('Service');
    const byProject = new Map(projects.map((p) => [p.metadata.name, []]));
    for (const s of services) {
      const l = byProject.get(s.metadata.project);
      if (l) l.push(s);
    }
    const total = countStates(services);
    kpis.hidden = projects.length === 0;
    kpis.replaceChildren(...['Ready', 'Progressing', 'Degraded'].map((state) =>
      h('div', { class: 'kpi s-' + state.toLowerCase() },
        h('span', { class: 'kpi-n' }, String(total[state])),
        h('span', { class: 'kpi-label' }, h('span', { class: 'dot', 'aria-hidden': 'true' }),
          `${state} service${total[state] === 1 ? '' : 's'}`))));
    keyed(list, projects, (p) => p.metadata.name,
      (p) => p.metadata.resourceVersion + JSON.stringify(countStates(byProject.get(p.metadata.name))) + byProject.get(p.metadata.name).length,
      (p) => projectRow(p, byProject.get(p.metadata.name)));
    empty.hidden = projects.length > 0;
    markFirstStatus();
    if (!loadedEvents) {
      loadedEvents = true;
      loadWarnings();
    } else {
      refreshWarnings();
    }
  }, 40);

  async function loadWarnings() {
    const names = w.list('Project').map((p) => p.metadata.name);
    const results = await Promise.allSettled(names.map((p) =>
      get(projectPath(p, 'events'), { query: { limit: 50 }, signal: ctl.signal })));
    if (ctl.signal.aborted) return;
    const items = [];
    const problems = [];
    for (const r of results) {
      if (r.status === 'fulfilled') items.push(...(r.value.items || []).filter((e) => e.type === 'Warning'));
      else if (!(r.reason instanceof APIError && r.reason.status === 404)) problems.push(r.reason); // 404: deleted meanwhile
    }
    if (problems.some(isAuthError)) return authFailed(problems.find(isAuthError));
    items.sort((a, b) => Date.parse(b.lastTimestamp) - Date.parse(a.lastTimestamp));
    const newest = items.slice(0, 10);
    warnStatus.replaceChildren(...(problems.length ? [errorBox(problems[0], 'Events')] : []),
      newest.length || problems.length ? '' : 'No warnings. ');
    warnStatus.className = newest.length ? 'sr-only' : 'muted';
    if (newest.length) warnStatus.append(`${newest.length} newest warning${newest.length === 1 ? '' : 's'}`);
    warnings.replaceChildren(...newest.map((e) => eventItem(e, true)));
  }
  const refreshWarnings = later(loadWarnings, 3000);

  const w = new Watch({}, {
    change: render,
    state: (s) => { setLive(s); if (s.phase === 'live') render(); },
    fatal: (e) => {
      if (isAuthError(e)) return authFailed(e);
      loading.hidden = true;
      failed.replaceChildren(errorBox(e, 'Watching your projects'));
    },
  });
  return {
    dispose() {
      ctl.abort();
      w.close();
      render.cancel();
      refreshWarnings.cancel();
    },
  };
}

function projectRow(p, services) {
  const name = p.metadata.name;
  const display = p.spec && p.spec.displayName;
  const n = countStates(services);
  return h('li', { class: 'project' },
    h('a', { class: 'project-link', href: '#/projects/' + encodeURIComponent(name) },
      h('span', { class: 'p-title' },
        h('span', { class: 'p-name' }, display || name),
        display ? h('span', { class: 'p-id' }, name) : null),
      badge(projectState(p), 'Project ' + (p.metadata.deletionTimestamp ? 'Deleting' : ((p.status && p.status.phase) || 'Pending'))),
      countsEl(n, services.length)));
}

function eventItem(e, withProject) {
  const warn = e.type === 'Warning';
  return h('li', { class: 'event' + (warn ? ' warning' : '') },
    h('span', { class: 'badge ' + (warn ? 's-degraded' : 's-neutral') },
      h('span', { class: 'glyph', 'aria-hidden': 'true' }, warn ? '!' : 'i'), e.type),
    ' ', timeEl(e.lastTimestamp), ' ',
    h('span', { class: 'ev-obj' },
      withProject ? [h('a', { href: '#/projects/' + encodeURIComponent(e.project) }, e.project), ' · '] : null,
      `${e.kind}/${e.name}`),
    ' ', h('strong', { class: 'ev-reason' }, e.reason), ': ',
    h('span', { class: 'ev-msg' }, e.message),
    e.count > 1 ? h('span', { class: 'muted' }, ` (×${e.count})`) : null);
}

// ---- project ----

const CONDITION_ORDER = ['Ready', 'Progressing', 'Degraded'];

function conditionClass(c) {
  if (c.type === 'Degraded') return c.status === 'True' ? 'bad' : 'good';
  if (c.type === 'Ready') return c.status === 'True' ? 'good' : 'neutral';
  return 'neutral';
}

export function serviceCard(s) {
  const st = s.status || {};
  const state = serviceState(s);
  const gen = s.metadata.generation || 0;
  const observed = st.observedGeneration || 0;
  const desired = s.spec.replicas ?? 1;
  const id = 'svc-' + s.metadata.name;
  const conditions = [...(st.conditions || [])].sort((a, b) => {
    const ia = CONDITION_ORDER.indexOf(a.type), ib = CONDITION_ORDER.indexOf(b.type);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  });
  const troubled = (st.replicas || []).filter((r) => r.message || r.state !== 'running');
  return h('article', { class: 'card svc s-' + state.toLowerCase(), 'aria-labelledby': id, 'data-service': s.metadata.name },
    h('header', { class: 'card-head' },
      h('h3', { id }, s.metadata.name),
      h('span', { class: 'state', 'data-state': state }, badge(state))),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Phase'), h('dd', { class: 'phase' }, st.phase || 'not observed yet'),
      h('dt', {}, 'Replicas'), h('dd', { class: 'replicas' }, `${st.readyReplicas || 0}/${desired} ready`),
      h('dt', {}, 'Generation'),
      h('dd', { class: 'generation' }, gen === observed
        ? `${gen}, applied`
        : h('span', { class: 'applying' }, `applying generation ${gen}…`, observed ? ` (observed ${observed})` : ' (not observed yet)')),
      h('dt', {}, 'Image'), h('dd', {}, h('code', { class: 'image' }, s.spec.image || ''))),
    conditions.length
      ? h('ul', { class: 'conditions', 'aria-label': 'Conditions of ' + s.metadata.name }, conditions.map((c) =>
        h('li', { class: 'cond ' + conditionClass(c) },
          h('span', { class: 'c-type' }, c.type), ' ',
          h('span', { class: 'c-status' }, c.status),
          c.reason ? [' · ', h('span', { class: 'c-reason' }, c.reason)] : null,
          ' · ', timeEl(c.lastTransitionTime),
          c.message ? h('span', { class: 'c-msg' }, c.message) : null)))
      : h('p', { class: 'muted' }, 'No conditions yet: the controller has not looked at this service.'),
    troubled.length
      ? h('ul', { class: 'replica-notes', 'aria-label': 'Replicas' }, troubled.map((r) =>
        h('li', {}, `replica ${r.index}: ${r.state || 'unknown'}${r.health ? ', ' + r.health : ''}${r.restarts ? `, ${r.restarts} restarts` : ''}`,
          r.message ? ' — ' + r.message : '')))
      : null);
}

function projectView(name) {
  const title = h('h1', { tabindex: '-1' }, 'Project');
  const summary = h('p', { class: 'summary muted', 'aria-busy': 'true' }, 'Loading…');
  const failed = h('div');
  const grid = h('div', { class: 'services', 'aria-label': 'Services' });
  const evStatus = h('p', { class: 'muted' }, 'Loading…');
  const events = h('ol', { class: 'events', 'aria-label': 'Recent events' });
  const evSection = h('section', { class: 'panel', 'aria-labelledby': 'ev-h', hidden: true },
    h('h2', { id: 'ev-h' }, 'Recent events'), evStatus, events);
  main.replaceChildren(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Projects'), h('span', { 'aria-hidden': 'true' }, ' › ')),
    title, summary, failed, grid, evSection);
  const crumbs = main.querySelector('.crumbs');
  const ctl = new AbortController();
  let loadedEvents = false;

  const render = later(() => {
    if (!w.synced) return;
    const project = w.objects.get(`Project /${name}`);
    summary.removeAttribute('aria-busy');
    if (!project) {
      title.textContent = 'Project not available';
      summary.textContent = 'This project was deleted, or you may no longer see it.';
      grid.replaceChildren();
      evSection.hidden = true;
      return;
    }
    const display = project.spec && project.spec.displayName;
    title.replaceChildren(display || name, display ? h('span', { class: 'p-id' }, name) : '');
    if (crumbs.childNodes.length < 3) crumbs.append(h('span', { 'aria-current': 'page' }, name));
    const services = w.list('Service').sort(byName);
    const n = countStates(services);
    summary.className = 'summary';
    summary.replaceChildren(badge(projectState(project), 'Project ' + ((project.status && project.status.phase) || 'Pending')), ' ',
      `${services.length} service${services.length === 1 ? '' : 's'}: `, countsEl(n, services.length));
    if (services.length === 0) {
      forget(grid);
      grid.replaceChildren(h('p', { class: 'empty' }, 'No services in this project yet.'));
    } else {
      keyed(grid, services, (s) => s.metadata.name, (s) => s.metadata.resourceVersion, serviceCard);
    }
    evSection.hidden = false;
    markFirstStatus();
    if (!loadedEvents) {
      loadedEvents = true;
      loadEvents();
    } else {
      refreshEvents();
    }
  }, 40);

  async function loadEvents() {
    try {
      const list = await get(projectPath(name, 'events'), { query: { limit: 15 }, signal: ctl.signal });
      const items = list.items || [];
      evStatus.className = items.length ? 'sr-only' : 'muted';
      evStatus.textContent = items.length ? `${items.length} most recent events` : 'No events yet.';
      events.replaceChildren(...items.map((e) => eventItem(e, false)));
    } catch (e) {
      if (ctl.signal.aborted || e.name === 'AbortError') return;
      if (isAuthError(e)) return authFailed(e);
      evStatus.className = '';
      evStatus.replaceChildren(errorBox(e, 'Events'));
    }
  }
  const refreshEvents = later(loadEvents, 1000);

  const w = new Watch({ project: name }, {
    change: render,
    state: (s) => { setLive(s); if (s.phase === 'live') render(); },
    fatal: (e) => {
      if (isAuthError(e)) return authFailed(e);
      title.textContent = 'Project not available';
      summary.removeAttribute('aria-busy');
      summary.textContent = '';
      failed.replaceChildren(errorBox(e));
      setLive(null);
    },
  });
  return {
    dispose() {
      ctl.abort();
      w.close();
      render.cancel();
      refreshEvents.cancel();
    },
  };
}

// ---- routing ----

function parseRoute() {
  const hash = location.hash || '#/';
  if (!hash.startsWith('#/')) return { page: 'overview' };
  try {
    const parts = hash.slice(2).split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] === 'projects' && parts[1]) return { page: 'project', project: parts[1] };
  } catch {
    // A malformed escape: the overview.
  }
  return { page: 'overview' };
}

function route(signInMessage, notice) {
  if (view) view.dispose();
  view = null;
  showAlert('');
  if (!token.get()) {
    view = signInView(signInMessage, notice);
    return;
  }
  signoutBtn.hidden = false;
  if (!whoEl.textContent) loadMe();
  const r = parseRoute();
  view = r.page === 'project' ? projectView(r.project) : overviewView();
  document.title = r.page === 'project' ? `${r.project} · PanelX` : 'Projects · PanelX';
  if (routed) {
    const h1 = main.querySelector('h1');
    if (h1) h1.focus({ preventScroll: true });
  }
  routed = true;
}

signoutBtn.addEventListener('click', () => {
  token.clear();
  whoEl.textContent = '';
  if (location.hash !== '#/' && location.hash !== '') history.replaceState(null, '', '#/');
  route('Signed out.', true);
});

window.addEventListener('hashchange', () => {
  if (location.hash && !location.hash.startsWith('#/')) return; // an in-page anchor
  route();
});

window.addEventListener('unhandledrejection', (ev) => {
  showAlert('Unexpected error: ' + (ev.reason && ev.reason.message ? ev.reason.message : ev.reason));
});

route();
