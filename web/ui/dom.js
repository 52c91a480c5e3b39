// DOM helpers of the dashboard. Everything is built with createElement and
// text nodes: no HTML is parsed from strings (nothing the API says can
// become markup), no inline style or handler (the Content-Security-Policy
// forbids both).

// h builds an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child…).
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style') throw new Error('inline style is not allowed (CSP): use a class');
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const absFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'long' });

// relative says how long ago t was: "now", "42 sec. ago", "5 min. ago", "3 hr. ago".
export function relative(t, now = Date.now()) {
  const s = Math.round((t.getTime() - now) / 1000);
  if (s > -5) return 'just now';
  const steps = [[60, 'second'], [3600, 'minute', 60], [86400, 'hour', 3600], [86400 * 30, 'day', 86400], [Infinity, 'month', 86400 * 30]];
  for (const [limit, unit, div = 1] of steps) {
    if (-s < limit) return rtf.format(Math.round(s / div), unit);
  }
  return absFormat.format(t);
}

export const absolute = (t) => absFormat.format(t);

// timeEl: a <time> showing how long ago, with the absolute time on hover
// and focus-free (the title is also read by screen readers).
export function timeEl(ts) {
  if (!ts) return h('span', { class: 'muted' }, 'never');
  const t = new Date(ts);
  if (Number.isNaN(t.getTime()) || t.getTime() <= 0) return h('span', { class: 'muted' }, '—');
  return h('time', { class: 'rel', datetime: t.toISOString(), title: absolute(t) }, relative(t));
}

// The relative times move on by themselves.
setInterval(() => {
  const now = Date.now();
  for (const el of document.querySelectorAll('time.rel')) {
    const text = relative(new Date(el.dateTime), now);
    if (el.textContent !== text) el.textContent = text;
  }
}, 10000);

// keyed updates a list in place: items whose signature did not change keep
// their element (and the keyboard focus inside it); others are rebuilt.
const keyedState = new WeakMap();

export function keyed(container, items, key, signature, build) {
  let state = keyedState.get(container);
  if (!state) {
    state = new Map();
    keyedState.set(container, state);
    container.replaceChildren();
  }
  const seen = new Set();
  let prev = null;
  for (const item of items) {
    const k = key(item);
    seen.add(k);
    const sig = signature(item);
    let entry = state.get(k);
    if (!entry || entry.sig !== sig) {
      const el = build(item);
      if (entry) {
        const focused = entry.el.contains(document.activeElement);
        entry.el.replaceWith(el);
        if (focused) focusFirst(el);
      }
      entry = { sig, el };
      state.set(k, entry);
    }
    const want = prev ? prev.nextSibling : container.firstChild;
    if (want !== entry.el) container.insertBefore(entry.el, want);
    prev = entry.el;
  }
  for (const [k, entry] of state) {
    if (!seen.has(k)) {
      entry.el.remove();
      state.delete(k);
    }
  }
}

function focusFirst(el) {
  const target = el.matches('a[href],button') ? el : el.querySelector('a[href],button');
  if (target) target.focus();
}

// later runs fn at most once per delay ms, trailing: many changes in a burst
// cost one render.
export function later(fn, delay) {
  let timer = null;
  const run = () => { timer = null; fn(); };
  const schedule = () => { if (timer === null) timer = setTimeout(run, delay); };
  schedule.cancel = () => { clearTimeout(timer); timer = null; };
  return schedule;
}

// forget drops what keyed knows of a container whose children are replaced
// by other means.
export function forget(container) {
  keyedState.delete(container);
}
