// Pieces the dashboard's pages share: how a service's state is named,
// badges, conditions, events, the API's refusals.

import { APIError } from './api.js';
import { h, timeEl } from './dom.js';

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

const GLYPH = { Ready: '✓', Progressing: '…', Degraded: '✕', Deleting: '–', Pending: '…', Unknown: '?', Neutral: '•' };

// badge names a state in text; the glyph and the colour only repeat it.
export function badge(state, label = state) {
  return h('span', { class: 'badge s-' + state.toLowerCase() },
    h('span', { class: 'glyph', 'aria-hidden': 'true' }, GLYPH[state] || '•'), label);
}

export function projectState(p) {
  const phase = (p.status && p.status.phase) || '';
  if (p.metadata.deletionTimestamp) return 'Deleting';
  if (phase === 'Ready') return 'Ready';
  if (phase === 'Degraded' || phase === 'Failed') return 'Degraded';
  return phase ? 'Progressing' : 'Pending';
}

export function countStates(services) {
  const n = { Ready: 0, Progressing: 0, Degraded: 0, Deleting: 0 };
  for (const s of services) n[serviceState(s)]++;
  return n;
}

export function countsEl(n, total) {
  if (total === 0) return h('span', { class: 'counts muted' }, 'no services');
  const parts = ['Ready', 'Progressing', 'Degraded'].map((state) =>
    h('span', { class: 'count s-' + state.toLowerCase() + (n[state] ? '' : ' zero') },
      h('span', { class: 'dot', 'aria-hidden': 'true' }), `${n[state]} ${state}`));
  if (n.Deleting) parts.push(h('span', { class: 'count s-deleting' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), `${n.Deleting} Deleting`));
  return h('span', { class: 'counts' }, parts);
}

export const byName = (a, b) => a.metadata.name.localeCompare(b.metadata.name);

export function isAuthError(e) {
  return e instanceof APIError && e.status === 401;
}

export const isAbort = (e) => e && e.name === 'AbortError';

// reasonOf is what the page shows of a failure: the API's own words.
export function reasonOf(err) {
  return err instanceof APIError ? err.reason : String(err && err.message ? err.message : err);
}

// errorBox shows a refusal: status, title, the API's detail and request ID,
// and each field error of the problem document.
export function errorBox(err, what) {
  let reason = reasonOf(err);
  let fields = null;
  if (err instanceof APIError && Array.isArray(err.problem.errors) && err.problem.errors.length > 1) {
    const p = err.problem;
    reason = `${err.status} ${p.title || ''}`.trim() + ': ' + (p.detail || p.title || '') + (p.requestId ? ` (request ${p.requestId})` : '');
    fields = h('ul', { class: 'field-errors' }, p.errors.map((e) =>
      h('li', {}, e.field ? [h('code', {}, e.field), ': '] : null, e.detail || e.type || '')));
  }
  return h('div', { class: 'problem', role: 'alert' },
    h('strong', {}, what ? `${what} — the API refused:` : 'The API refused:'), ' ', reason, fields);
}

export function eventItem(e, withProject) {
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

const CONDITION_ORDER = ['Ready', 'Progressing', 'Degraded', 'NodeLost'];

function conditionClass(c) {
  // Degraded and NodeLost (a node of the swarm lost) are bad when True.
  if (c.type === 'Degraded' || c.type === 'NodeLost') return c.status === 'True' ? 'bad' : 'good';
  if (c.type === 'Ready') return c.status === 'True' ? 'good' : 'neutral';
  return 'neutral';
}

// conditionsList: type, status, reason, message and how long ago (the
// absolute time on hover).
export function conditionsList(s) {
  const st = s.status || {};
  const conditions = [...(st.conditions || [])].sort((a, b) => {
    const ia = CONDITION_ORDER.indexOf(a.type), ib = CONDITION_ORDER.indexOf(b.type);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  });
  if (!conditions.length) return h('p', { class: 'muted' }, 'No conditions yet: the controller has not looked at this service.');
  return h('ul', { class: 'conditions', 'aria-label': 'Conditions of ' + s.metadata.name }, conditions.map((c) =>
    h('li', { class: 'cond ' + conditionClass(c) },
      h('span', { class: 'c-type' }, c.type), ' ',
      h('span', { class: 'c-status' }, c.status),
      c.reason ? [' · ', h('span', { class: 'c-reason' }, c.reason)] : null,
      ' · ', timeEl(c.lastTransitionTime),
      c.message ? h('span', { class: 'c-msg' }, c.message) : null)));
}

// generationEl: "3, applied", or "applying generation 4…" while the
// controller has not caught up.
export function generationEl(s) {
  const gen = s.metadata.generation || 0;
  const observed = (s.status || {}).observedGeneration || 0;
  return gen === observed
    ? `${gen}, applied`
    : h('span', { class: 'applying' }, `applying generation ${gen}…`, observed ? ` (observed ${observed})` : ' (not observed yet)');
}

// sourceEl: the image a service runs, or where it is built from.
export function sourceEl(s) {
  const b = s.spec.build;
  if (!b) return h('code', { class: 'image' }, s.spec.image || '');
  const g = b.git || {};
  return h('span', { class: 'source' }, 'built from ', h('code', { class: 'image' }, g.url || ''),
    g.ref ? [' at ', h('code', {}, g.ref)] : null, g.dir ? [' in ', h('code', {}, g.dir)] : null);
}

export const servicePath = (project, service) =>
  '#/projects/' + encodeURIComponent(project) + '/services/' + encodeURIComponent(service);
