// The PanelX dashboard: sign-in (a PanelX API token, or Supabase email and
// password through auth.js when the server is configured for it), the
// overview of the projects you may see, a project's services, updated live
// from the API's watch stream, a service's page (service.js) and the apply
// box (apply.js).
// Hash routes: #/ (overview), #/projects/<name> (a project),
// #/projects/<name>/services/<service> (a service), #/apply.

import { APIError, Watch, get, projectPath, token } from './api.js';
import { forget, h, keyed, later } from './dom.js';
import {
  badge, byName, conditionsList, countStates, countsEl, errorBox, eventItem, generationEl, isAuthError,
  projectState, servicePath, serviceState, sourceEl,
} from './parts.js';

export { serviceState };

const main = document.getElementById('main');
const liveEl = document.getElementById('live');
const whoEl = document.getElementById('who');
const signoutBtn = document.getElementById('signout');
const alertEl = document.getElementById('alert');

let view = null; // the current page: {dispose()}
let routed = false;
let firstStatus = false;

// ---- states ----

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

// authFailed: the API no longer takes the credential (revoked, expired):
// a Supabase session is refreshed once and the page built again; otherwise
// back to the sign-in page, saying why.
let refreshing = null;
let lastRefresh = 0;

function authFailed(err) {
  const reason = err instanceof APIError ? err.reason : String(err && err.message ? err.message : err);
  if (token.supabase() && !refreshing && Date.now() - lastRefresh > 30000) {
    lastRefresh = Date.now();
    refreshing = import('./auth.js').then((m) => m.refresh()).catch(() => false).then((ok) => {
      refreshing = null;
      if (ok) route();
      else signedOut(`The API refused your Supabase session's token (${reason}) and it could not be refreshed. Sign in again.`);
    });
    return;
  }
  if (refreshing) return;
  signedOut(`The API refused the ${token.supabase() ? 'Supabase session\'s token' : 'token'}: ${reason}. Sign in again.`);
}

// signedOut forgets the credential (a Supabase session on Auth too) and
// shows the sign-in page with a message.
async function signedOut(message, notice) {
  if (view) view.dispose();
  view = null;
  whoEl.textContent = '';
  if (token.supabase()) {
    main.replaceChildren(h('p', { class: 'muted', 'aria-busy': 'true' }, 'Signing out…'));
    await import('./auth.js').then((m) => m.signOut()).catch(() => {});
  }
  token.clear();
  route(message, notice);
}

async function loadMe() {
  whoEl.textContent = '';
  try {
    const me = await get('api/v1/me');
    whoEl.textContent = (me.email || me.userId) + (me.admin ? ' (administrator)' : '');
    whoEl.title = 'Signed in as ' + me.userId + (me.email ? ` (${me.email})` : '') + (me.method ? ` with ${me.method === 'jwt' ? 'a Supabase session' : 'an API token'}` : '') +
      (me.project ? `, token limited to project ${me.project}` : '');
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
  let disposed = false;
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'token-help' });
  const error = h('p', { id: 'signin-error', class: notice ? 'notice' : 'problem', role: 'alert', hidden: !message }, message || '');
  // showError says why next to the form that was sent.
  const showError = (text, where = form) => {
    error.className = 'problem';
    error.textContent = text;
    error.hidden = false;
    where.append(error);
  };
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'signin-form', id: 'signin', novalidate: true },
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'help' },
      'Paste a PanelX API token: ', h('code', {}, 'panelx token create --user <id>'),
      ' prints one; on its first start the server writes one to ', h('code', {}, '<data dir>/admin-token'),
      ' (', h('code', {}, 'make run'), ' logs where). ',
      'It stays in this tab (sessionStorage) and goes only to this server\'s API, in the Authorization header.'),
    button);
  const supabaseSlot = h('div', { class: 'signin-supabase-slot' });
  const page = h('div', { class: 'signin', id: 'signin-page' },
    h('h1', { tabindex: '-1' }, 'Sign in to PanelX'), supabaseSlot, form, error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tok = input.value.trim();
    if (!tok) {
      showError('Paste a token first.');
      input.focus();
      return;
    }
    button.disabled = true;
    error.hidden = true;
    try {
      await get('api/v1/me', { tok });
      token.set(tok);
      input.value = '';
      route();
    } catch (e) {
      showError('Sign-in refused: ' + (e instanceof APIError ? e.reason : e.message));
      input.select();
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(page);
  input.focus();

  // A server configured for a Supabase project also takes its users' email
  // and password (supabase-js is fetched meanwhile).
  import('./auth.js').then(async (auth) => {
    const cfg = await auth.config();
    if (disposed || !cfg.supabase) return;
    supabaseSlot.replaceChildren(auth.signInForm({ showError, error, signedIn: () => { startSupabase(); route(); } }),
      h('p', { class: 'signin-or' }, 'or with a PanelX API token:'));
    if (!input.value) supabaseSlot.querySelector('input').focus();
  }).catch((e) => {
    if (!disposed) supabaseSlot.replaceChildren(h('p', { class: 'help' }, 'Supabase sign-in is not available: ' + e.message));
  });
  return { dispose() { disposed = true; } };
}

// startSupabase loads supabase-js for a tab signed in through Supabase, once:
// it refreshes the session and says when it ended.
let supabaseStarted = false;

function startSupabase() {
  if (supabaseStarted) return;
  supabaseStarted = true;
  import('./auth.js').then((auth) => {
    auth.onEnded((why) => signedOut(why + ' Sign in again.'));
    return auth.start();
  }).then((ok) => {
    if (!ok) signedOut('Your Supabase session ended. Sign in again.');
  }, (e) => {
    supabaseStarted = false;
    showAlert('The Supabase session cannot be refreshed: ' + e.message);
  });
}

// resumeView: a reload of a tab signed in through Supabase whose stored
// access token is about to expire waits for supabase-js to refresh it.
function resumeView() {
  let disposed = false;
  setLive(null);
  main.replaceChildren(h('p', { class: 'muted', 'aria-busy': 'true' }, 'Resuming your Supabase session…'));
  import('./auth.js').then((auth) => auth.resume()).then((ok) => {
    if (disposed) return;
    if (ok) route();
    else signedOut('Your Supabase session ended. Sign in again.', true);
  }, (e) => {
    if (!disposed) signedOut('Your Supabase session could not be resumed: ' + e.message);
  });
  return { dispose() { disposed = true; } };
}

// ---- overview ----

function overviewView() {
  const loading = h('p', { class: 'muted', 'aria-busy': 'true' }, 'Loading your projects…');
  const kpis = h('div', { class: 'kpis', hidden: true });
  const list = h('ul', { class: 'projects', 'aria-label': 'Projects' });
  const empty = h('div', { class: 'empty', hidden: true },
    h('p', {}, 'You have no projects yet (or none shared with you).'),
    h('p', {}, 'Create one with ', h('code', {}, 'panelx apply -f project.yaml'), ', or paste its manifests in ',
      h('a', { href: '#/apply' }, 'Apply manifests'), '.'));
  const failed = h('div');
  const warnStatus = h('p', { class: 'muted' }, 'Loading…');
  const warnings = h('ol', { class: 'events', 'aria-label': 'Newest warning events' });
  main.replaceChildren(
    h('div', { class: 'page-head' },
      h('h1', { tabindex: '-1' }, 'Projects'),
      h('a', { class: 'button-link', href: '#/apply', id: 'to-apply' }, 'Apply manifests')),
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

// ---- project ----

export function serviceCard(s) {
  const st = s.status || {};
  const state = serviceState(s);
  const desired = s.spec.replicas ?? 1;
  const id = 'svc-' + s.metadata.name;
  const troubled = (st.replicas || []).filter((r) => r.message || r.state !== 'running');
  return h('article', { class: 'card svc s-' + state.toLowerCase(), 'aria-labelledby': id, 'data-service': s.metadata.name },
    h('header', { class: 'card-head' },
      h('h3', { id }, h('a', { class: 'svc-link', href: servicePath(s.metadata.project, s.metadata.name) }, s.metadata.name)),
      h('span', { class: 'state', 'data-state': state }, badge(state))),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Phase'), h('dd', { class: 'phase' }, st.phase || 'not observed yet'),
      h('dt', {}, 'Replicas'), h('dd', { class: 'replicas' }, `${st.readyReplicas || 0}/${desired} ready`),
      h('dt', {}, 'Generation'), h('dd', { class: 'generation' }, generationEl(s)),
      h('dt', {}, s.spec.build ? 'Source' : 'Image'), h('dd', {}, sourceEl(s))),
    conditionsList(s),
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
    if (parts[0] === 'projects' && parts[1] && parts[2] === 'services' && parts[3]) {
      return { page: 'service', project: parts[1], service: parts[3] };
    }
    if (parts[0] === 'projects' && parts[1]) return { page: 'project', project: parts[1] };
    if (parts[0] === 'apply') return { page: 'apply' };
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
    view = token.supabase() ? resumeView() : signInView(signInMessage, notice);
    return;
  }
  if (token.supabase()) startSupabase();
  signoutBtn.hidden = false;
  if (!whoEl.textContent) loadMe();
  const r = parseRoute();
  const env = { main, setLive, authFailed, markFirstStatus };
  const focus = routed;
  switch (r.page) {
    case 'service':
      view = lazy(() => import('./service.js'), (m) => m.serviceView(env, r.project, r.service), focus);
      document.title = `${r.service} · ${r.project} · PanelX`;
      break;
    case 'project':
      view = projectView(r.project);
      document.title = `${r.project} · PanelX`;
      break;
    case 'apply':
      view = lazy(() => import('./apply.js'), (m) => m.applyView(env), focus);
      document.title = 'Apply manifests · PanelX';
      break;
    default:
      view = overviewView();
      document.title = 'Projects · PanelX';
  }
  if (focus) focusHeading();
  routed = true;
}

function focusHeading() {
  const h1 = main.querySelector('h1');
  if (h1) h1.focus({ preventScroll: true });
}

// lazy loads a page's module when it is first visited (the overview's
// first load does not carry the service page and the apply box), then
// builds the page unless it was left meanwhile.
function lazy(load, build, focus) {
  let inner = null;
  let disposed = false;
  setLive(null);
  main.replaceChildren(h('p', { class: 'muted', 'aria-busy': 'true' }, 'Loading…'));
  load().then((m) => {
    if (disposed) return;
    inner = build(m);
    if (focus) focusHeading();
  }, (e) => {
    if (!disposed) main.replaceChildren(h('p', { class: 'problem', role: 'alert' }, 'This page could not be loaded: ' + e.message));
  });
  return {
    dispose() {
      disposed = true;
      if (inner) inner.dispose();
    },
  };
}

signoutBtn.addEventListener('click', () => {
  signoutBtn.hidden = true;
  if (location.hash !== '#/' && location.hash !== '') history.replaceState(null, '', '#/');
  signedOut('Signed out.', true);
});

window.addEventListener('hashchange', () => {
  if (location.hash && !location.hash.startsWith('#/')) return; // an in-page anchor
  route();
});

window.addEventListener('unhandledrejection', (ev) => {
  showAlert('Unexpected error: ' + (ev.reason && ev.reason.message ? ev.reason.message : ev.reason));
});

route();
