// A service's page (#/projects/<project>/services/<service>): its status
// from the watch stream, the build of a service built from source, live CPU
// and memory from the metrics WebSocket, its logs followed through fetch
// (NDJSON), a terminal (xterm.js, term.js) over the exec WebSocket, the
// files of its volumes (files.js), its revisions with rollback, and its
// events. Every stream ends when the page is left.

import { APIError, Watch, get, lines, open, post, projectPath, refusal, socket, token } from './api.js';
import { absolute, h, later, timeEl } from './dom.js';
import {
  badge, conditionsList, errorBox, eventItem, generationEl, isAbort, isAuthError, reasonOf, serviceState, sourceEl,
} from './parts.js';
import { filesPanel, formatBytes } from './files.js';
import { Sparkline } from './spark.js';
import { bufferText, loadXterm } from './term.js';

// LOG_LINES bounds the log lines kept in the page (the oldest go first).
export const LOG_LINES = 2000;
const BUILD_LOG_CHARS = 500000;

const STATUS_TEXT = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout',
  409: 'Conflict', 422: 'Unprocessable Entity', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

const shortID = (id) => (id || '').replace(/^sha256:/, '').slice(0, 12);

// splitCommand splits a command line into an argument vector: spaces
// separate, '…' and "…" quote, \ escapes outside single quotes.
export function splitCommand(line) {
  const args = [];
  let cur = '';
  let has = false;
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      has = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has) args.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (quote) throw new Error('a quote is not closed');
  if (has) args.push(cur);
  return args;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

export function serviceView(env, project, name) {
  const { main, setLive, authFailed } = env;
  const svcPath = (...rest) => projectPath(project, 'services', encodeURIComponent(name), ...rest);
  const ctl = new AbortController();
  const signal = ctl.signal;
  const disposers = [];
  let svc = null;
  let started = false;

  // failure shows a refusal unless it is the end of the page or of the
  // token (then back to sign-in).
  const failure = (e, where, what) => {
    if (signal.aborted || isAbort(e)) return true;
    if (isAuthError(e)) {
      authFailed(e);
      return true;
    }
    if (where) where.replaceChildren(errorBox(e, what));
    return false;
  };

  // action runs a button's API call, showing its result or the API's
  // refusal next to it.
  const action = (button, resultEl, what, fn) => {
    button.addEventListener('click', async () => {
      button.disabled = true;
      resultEl.replaceChildren(h('p', { class: 'muted' }, what + '…'));
      try {
        const text = await fn();
        resultEl.replaceChildren(h('p', { class: 'notice', role: 'status' }, text));
        events.refresh();
      } catch (e) {
        failure(e, resultEl, what);
      } finally {
        const refocus = document.activeElement === document.body || document.activeElement === null;
        button.disabled = false;
        if (refocus) button.focus();
      }
    });
  };

  // ---- header ----

  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    h('a', { href: '#/' }, 'Projects'), h('span', { 'aria-hidden': 'true' }, ' › '),
    h('a', { href: '#/projects/' + encodeURIComponent(project) }, project), h('span', { 'aria-hidden': 'true' }, ' › '),
    h('span', { 'aria-current': 'page' }, name));
  const stateEl = h('span', { class: 'state' });
  const title = h('h1', { tabindex: '-1' }, name);
  const summary = h('p', { class: 'summary muted', 'aria-busy': 'true' }, 'Loading…');
  const failed = h('div');

  // ---- sections ----

  const section = (id, heading, ...children) =>
    h('section', { class: 'panel card-panel', id, 'aria-labelledby': id + '-h', hidden: true },
      h('h2', { id: id + '-h' }, heading), ...children);

  const statusBody = h('div');
  const statusSec = section('status', 'Status', statusBody);

  const build = buildPanel();
  const metrics = metricsPanel();
  const logs = logsPanel();
  const term = terminalPanel();
  const files = filesPanel({ project, section, failure, signal });
  const revisions = revisionsPanel();
  const events = eventsPanel();

  const grid = h('div', { class: 'svc-page' },
    statusSec, h('div', { class: 'svc-side' }, metrics.el, build.el),
    logs.el, term.el, files.el, revisions.el, events.el);
  main.replaceChildren(crumbs, h('div', { class: 'page-head' }, title, stateEl), summary, failed, grid);

  // ---- status ----

  function renderStatus(s) {
    const st = s.status || {};
    const state = serviceState(s);
    stateEl.dataset.state = state;
    stateEl.replaceChildren(badge(state));
    const desired = s.spec.replicas ?? 1;
    summary.className = 'summary';
    summary.replaceChildren(`Service of project ${project} · `, `${st.readyReplicas || 0}/${desired} replicas ready · `,
      st.phase ? `phase ${st.phase}` : 'not observed yet');
    const ro = st.rollout || {};
    const replicas = st.replicas || [];
    // Replicas name their node on a runtime with several (Swarm).
    const onNodes = replicas.some((r) => r.node);
    statusBody.replaceChildren(
      h('dl', { class: 'facts' },
        h('dt', {}, s.spec.build ? 'Source' : 'Image'), h('dd', {}, sourceEl(s)),
        h('dt', {}, 'Phase'), h('dd', { class: 'phase' }, st.phase || 'not observed yet'),
        h('dt', {}, 'Replicas'), h('dd', { class: 'replicas' }, `${st.readyReplicas || 0}/${desired} ready`),
        h('dt', {}, 'Generation'), h('dd', { class: 'generation' }, generationEl(s)),
        h('dt', {}, 'Revision'), h('dd', { class: 'revision' }, ro.revision
          ? [`${ro.revision}`, ro.readyRevision && ro.readyRevision !== ro.revision ? ` (last ready: ${ro.readyRevision})` : '',
            ro.startedAt ? [', since ', timeEl(ro.startedAt)] : '']
          : h('span', { class: 'muted' }, 'none yet')),
        st.imageID ? [h('dt', {}, 'Image ID'), h('dd', {}, h('code', { title: st.imageID }, shortID(st.imageID)))] : null),
      h('h3', { class: 'sub' }, 'Conditions'),
      conditionsList(s),
      domainsEl(st.domains || []),
      h('h3', { class: 'sub' }, 'Replicas'),
      replicas.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'table replicas-table' },
          h('thead', {}, h('tr', {}, ['Replica', ...(onNodes ? ['Node'] : []), 'State', 'Health', 'Restarts', 'Started', 'Message'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, replicas.map((r) => h('tr', { class: r.state === 'running' ? '' : 'trouble' },
            h('td', {}, String(r.index)),
            onNodes ? h('td', { class: 'node' }, r.node || h('span', { class: 'muted' }, '—')) : null,
            h('td', {}, badge(r.state === 'running' ? 'Ready' : (r.state === 'exited' || r.state === 'missing' || r.state === 'restarting' ? 'Degraded' : 'Progressing'), r.state || 'unknown')),
            h('td', {}, r.health || h('span', { class: 'muted' }, 'no check')),
            h('td', {}, String(r.restarts || 0)),
            h('td', {}, r.startedAt ? timeEl(r.startedAt) : h('span', { class: 'muted' }, '—')),
            h('td', { class: 'msg' }, r.message || ''))))))
        : h('p', { class: 'muted' }, 'No replica runs.'));
  }

  // domainsEl: each hostname, whether the edge routes it (and why not), and
  // its certificate as the edges report it.
  function domainsEl(domains) {
    if (!domains.length) return '';
    const certState = { Issued: 'Ready', Pending: 'Progressing', Failed: 'Degraded' };
    return h('div', {}, h('h3', { class: 'sub' }, 'Domains'), h('ul', { class: 'domains' }, domains.map((d) => {
      const c = d.certificate;
      return h('li', { class: 'domain', 'data-host': d.host },
        h('div', { class: 'domain-head' },
          h('code', {}, (d.host || '(no hostname)') + (d.path && d.path !== '/' ? d.path : '')), ' ',
          badge(d.routed ? 'Ready' : 'Degraded', d.routed ? 'routed' : 'not routed'),
          c ? [' ', badge(certState[c.state] || 'Neutral', 'certificate ' + (c.state || 'unknown').toLowerCase())] : [' ', h('span', { class: 'muted' }, 'no TLS')]),
        d.reason ? h('div', { class: 'domain-note' }, d.reason) : null,
        c ? h('div', { class: 'domain-note muted' },
          [c.source ? `${c.source === 'custom' ? 'uploaded' : 'ACME'} certificate` : '', c.issuer ? `issued by ${c.issuer}` : '',
            c.notAfter ? `valid until ${absolute(new Date(c.notAfter))}` : ''].filter(Boolean).join(', '),
          c.message ? h('span', { class: c.state === 'Failed' ? 'bad-text' : '' }, (c.source || c.issuer || c.notAfter ? ' — ' : '') + c.message) : null,
          c.updatedAt && Date.parse(c.updatedAt) > 0 ? [' · reported ', timeEl(c.updatedAt)] : null) : null);
    })));
  }

  // ---- build ----

  function buildPanel() {
    const facts = h('div');
    const buildNow = h('button', { type: 'button', id: 'build-now' }, 'Build now');
    const cancel = h('button', { type: 'button', id: 'build-cancel', class: 'secondary', hidden: true }, 'Cancel build');
    const result = h('div', { class: 'action-result', 'aria-live': 'polite' });
    const logStatus = h('p', { class: 'muted' }, '');
    const log = h('pre', { class: 'buildlog', tabindex: '0', 'aria-label': 'Build log' });
    const el = section('build', 'Build', facts, h('div', { class: 'actions' }, buildNow, cancel), result,
      h('h3', { class: 'sub' }, 'Build log'), logStatus, log);
    action(buildNow, result, 'Build', async () => {
      const r = await post(svcPath('build'), undefined, { signal });
      return `Build requested (${r.request}); the status below follows it.`;
    });
    action(cancel, result, 'Cancel the build', async () => {
      await post(svcPath('build', 'cancel'), undefined, { signal });
      return 'Cancel requested: the build ends Failed, the running revision keeps serving.';
    });
    let streamCtl = null;
    let followedReq = null; // the build request whose log is shown
    let followedLive = false; // …followed while it was Building

    async function follow() {
      if (streamCtl) streamCtl.abort();
      streamCtl = new AbortController();
      const mine = streamCtl;
      const sig = AbortSignal.any([signal, mine.signal]);
      log.textContent = '';
      logStatus.textContent = 'Loading the build log…';
      let text = '';
      const show = later(() => {
        const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
        log.textContent = text;
        if (stick) log.scrollTop = log.scrollHeight;
      }, 50);
      try {
        const res = await open(svcPath('build', 'logs'), { query: { follow: 'true' }, accept: 'text/plain', signal: sig });
        logStatus.textContent = 'Following the newest build.';
        for await (const line of lines(res)) {
          text += line + '\n';
          if (text.length > BUILD_LOG_CHARS) text = text.slice(text.length - BUILD_LOG_CHARS);
          show();
        }
        show();
        if (!sig.aborted) logStatus.textContent = 'End of the build log.';
      } catch (e) {
        if (sig.aborted || isAbort(e)) return;
        if (isAuthError(e)) return authFailed(e);
        // No build ran here since the server started, or builds run on
        // another server: the API says which.
        logStatus.textContent = reasonOf(e);
      }
    }

    return {
      el,
      update(s) {
        const b = s.spec.build;
        el.hidden = !b;
        if (!b) return;
        const bs = (s.status || {}).build || {};
        const phase = bs.phase || '';
        const state = { Succeeded: 'Ready', Failed: 'Degraded', Queued: 'Progressing', Building: 'Progressing' }[phase] || 'Pending';
        facts.replaceChildren(h('dl', { class: 'facts' },
          h('dt', {}, 'Newest build'), h('dd', { class: 'build-phase', 'data-phase': phase }, badge(state, phase || 'not built yet')),
          h('dt', {}, 'Repository'), h('dd', {}, sourceEl(s)),
          bs.commit ? [h('dt', {}, 'Commit'), h('dd', {}, h('code', { title: bs.commit }, bs.commit.slice(0, 12)))] : null,
          bs.step ? [h('dt', {}, 'Step'), h('dd', {}, h('code', {}, bs.step))] : null,
          bs.message ? [h('dt', {}, 'Message'), h('dd', { class: phase === 'Failed' ? 'bad-text' : '' }, bs.message)] : null,
          bs.startedAt ? [h('dt', {}, 'Started'), h('dd', {}, timeEl(bs.startedAt))] : null,
          bs.finishedAt ? [h('dt', {}, 'Finished'), h('dd', {}, timeEl(bs.finishedAt))] : null,
          h('dt', {}, 'Running image'), h('dd', {}, bs.image
            ? [h('code', { class: 'image' }, bs.image), bs.imageCommit ? ` (commit ${bs.imageCommit.slice(0, 12)})` : '']
            : h('span', { class: 'muted' }, 'none: no build succeeded yet'))));
        cancel.hidden = !(phase === 'Queued' || phase === 'Building');
        // The log of the newest build: a queued build has none yet; a
        // build that started is followed live; one that ended while
        // nobody followed it is read whole.
        const req = bs.request || '';
        if (phase === 'Queued') {
          if (req !== followedReq) logStatus.textContent = 'Queued: the log starts with the build.';
        } else if (followedReq === null || req !== followedReq || (phase === 'Building' && !followedLive)) {
          followedReq = req;
          followedLive = phase === 'Building';
          follow();
        }
      },
      stop() { if (streamCtl) streamCtl.abort(); },
    };
  }

  // ---- metrics ----

  function metricsPanel() {
    const cpu = new Sparkline({ label: 'CPU', floor: 5 });
    const mem = new Sparkline({ label: 'Memory', floor: 16 * 1024 * 1024 });
    const cpuValue = h('span', { class: 'spark-value' }, '—');
    const memValue = h('span', { class: 'spark-value' }, '—');
    const status = h('p', { class: 'muted metrics-status', role: 'status' }, 'Connecting…');
    const problem = h('div');
    const el = section('metrics', 'Live CPU and memory',
      h('div', { class: 'sparks' },
        h('figure', { class: 'spark-box', id: 'spark-cpu' },
          h('figcaption', {}, h('span', { class: 'spark-name' }, 'CPU'), cpuValue), cpu.el),
        h('figure', { class: 'spark-box', id: 'spark-mem' },
          h('figcaption', {}, h('span', { class: 'spark-name' }, 'Memory'), memValue), mem.el)),
      status, problem);
    let ws = null;
    let stopped = false;

    const onSample = (msg) => {
      const mine = (msg.containers || []).filter((c) => c.service === name);
      const cpuSum = mine.reduce((n, c) => n + (c.cpuPercent || 0), 0);
      const memSum = mine.reduce((n, c) => n + (c.memoryUsedBytes || 0), 0);
      const limits = new Set(mine.map((c) => c.memoryLimitBytes || 0));
      cpu.push(cpuSum);
      mem.push(memSum);
      const n = mine.length;
      const who = n ? `${n} replica${n === 1 ? '' : 's'}` : 'no running replica';
      cpuValue.textContent = `${cpuSum.toFixed(1)} % of a core, max ${cpu.max.toFixed(1)} %`;
      const [limit] = limits;
      const limitText = limits.size === 1 && limit ? ` (limit ${formatBytes(limit)}${mine.length > 1 ? ' each' : ''})` : '';
      memValue.textContent = `${formatBytes(memSum)}${limitText}, max ${formatBytes(mem.max)}`;
      cpu.describe(`CPU: ${cpuSum.toFixed(1)} % of one core now, ${who}; highest of the last ${cpu.points.length} s ${cpu.max.toFixed(1)} %`);
      mem.describe(`Memory: ${formatBytes(memSum)} now, ${who}; highest ${formatBytes(mem.max)}`);
      status.textContent = `Live: one sample a second (${who}); the lines show the last two minutes.`;
      el.dataset.samples = String(Number(el.dataset.samples || 0) + 1);
    };

    async function run() {
      let backoff = 1000;
      while (!stopped && !signal.aborted) {
        const used = token.get();
        const outcome = await new Promise((resolve) => {
          let opened = false;
          try {
            ws = socket(projectPath(project, 'metrics', 'stream'));
          } catch (e) {
            resolve({ fatal: e });
            return;
          }
          ws.onopen = () => { opened = true; backoff = 1000; problem.replaceChildren(); };
          ws.onmessage = (ev) => {
            try {
              onSample(JSON.parse(ev.data));
            } catch (e) {
              status.textContent = 'A sample could not be read: ' + e.message;
            }
          };
          ws.onclose = (ev) => resolve({ opened, code: ev.code, reason: ev.reason });
        });
        ws = null;
        if (stopped || signal.aborted) return;
        if (outcome.fatal) {
          problem.replaceChildren(errorBox(outcome.fatal, 'Live metrics'));
          return;
        }
        if (!outcome.opened) {
          const err = await refusal(projectPath(project, 'metrics', 'stream'));
          if (signal.aborted) return;
          if (err instanceof APIError && err.status >= 400 && err.status < 500) {
            if (!failure(err, problem, 'Live metrics')) status.textContent = 'Not connected.';
            return;
          }
          status.textContent = `The metrics stream did not connect${err ? ': ' + reasonOf(err) : ''}; retrying in ${backoff / 1000} s…`;
        } else if (outcome.code === 1008 && token.get() && token.get() !== used) {
          continue; // ended with its credential; a refreshed one is there
        } else if (outcome.code === 1008 || outcome.code >= 4000) {
          problem.replaceChildren(errorBox(new APIError(outcome.code >= 4000 ? outcome.code - 4000 : 403, { detail: outcome.reason || 'the stream was closed' }), 'Live metrics'));
          status.textContent = 'Not connected.';
          return;
        } else {
          status.textContent = `The metrics stream ended${outcome.reason ? ' (' + outcome.reason + ')' : ''}; reconnecting in ${backoff / 1000} s…`;
        }
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 15000);
      }
    }

    return {
      el,
      start() { run(); },
      stop() {
        stopped = true;
        if (ws) ws.close(1000);
      },
    };
  }

  // ---- logs ----

  function logsPanel() {
    const followBox = h('input', { type: 'checkbox', id: 'logs-follow', checked: true });
    const clear = h('button', { type: 'button', class: 'secondary', id: 'logs-clear' }, 'Clear');
    const status = h('span', { class: 'muted logs-status', role: 'status' }, 'Connecting…');
    const box = h('div', { class: 'loglines', id: 'loglines', role: 'log', 'aria-live': 'off', tabindex: '0', 'aria-label': 'Log lines of ' + name });
    const problem = h('div');
    const el = section('logs', 'Logs',
      h('div', { class: 'toolbar' },
        h('label', { class: 'check' }, followBox, ' Keep the newest line in view'), clear, status),
      problem, box);
    el.classList.add('wide');
    const queue = [];
    const recent = new Set();
    let lastMs = 0;
    let count = 0;
    const partial = new Map();
    clear.addEventListener('click', () => { box.replaceChildren(); count = 0; });

    const flush = later(() => {
      if (!queue.length) return;
      const frag = document.createDocumentFragment();
      for (const l of queue.splice(0)) {
        const t = new Date(l.time);
        const replica = l.replica >= 0 ? String(l.replica) : '–';
        frag.append(h('div', { class: 'll s-' + (l.stream || 'stdout') },
          h('span', { class: 'll-time', title: Number.isNaN(t.getTime()) ? '' : absolute(t) }, Number.isNaN(t.getTime()) ? '' : timeFormat.format(t)),
          h('span', { class: 'll-tag', title: l.container || '' }, `[${replica} ${l.stream}]`),
          h('span', { class: 'll-text' }, l.text)));
        count++;
      }
      box.append(frag);
      let extra = box.childElementCount - LOG_LINES;
      while (extra-- > 0) box.firstElementChild.remove();
      if (followBox.checked) box.scrollTop = box.scrollHeight;
      status.textContent = `Following: ${box.childElementCount} line${box.childElementCount === 1 ? '' : 's'} shown (the newest ${LOG_LINES} are kept).`;
    }, 50);

    const take = (l) => {
      const ms = Date.parse(l.time);
      const key = `${l.time}|${l.replica}|${l.stream}|${l.text}`;
      if (ms < lastMs || recent.has(key)) return; // seen before a reconnect
      if (ms > lastMs) recent.clear();
      lastMs = Math.max(lastMs, ms || 0);
      recent.add(key);
      const pk = `${l.replica}|${l.stream}`;
      if (l.partial) {
        partial.set(pk, (partial.get(pk) || '') + l.text);
        return;
      }
      if (partial.has(pk)) {
        l.text = partial.get(pk) + l.text;
        partial.delete(pk);
      }
      queue.push(l);
      flush();
    };

    async function run() {
      let backoff = 1000;
      while (!signal.aborted) {
        try {
          const query = lastMs ? { follow: 'true', since: new Date(lastMs).toISOString() } : { follow: 'true', tail: 200 };
          const res = await open(svcPath('logs'), { query, accept: 'application/x-ndjson', signal });
          const opened = Date.now();
          problem.replaceChildren();
          status.textContent = 'Following…';
          for await (const text of lines(res)) {
            if (!text.trim()) continue;
            take(JSON.parse(text));
          }
          if (signal.aborted) return;
          if (Date.now() - opened > 10000) backoff = 1000; // a stream that lasted: not a failing one
          status.textContent = `The log stream ended; reconnecting in ${backoff / 1000} s…`;
        } catch (e) {
          if (failure(e)) return;
          if (e instanceof APIError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
            problem.replaceChildren(errorBox(e, 'Logs'));
            status.textContent = 'Not following.';
            return;
          }
          status.textContent = `The log stream failed (${reasonOf(e)}); reconnecting in ${backoff / 1000} s…`;
        }
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 15000);
      }
    }

    return { el, start() { run(); } };
  }

  // ---- terminal ----

  function terminalPanel() {
    const cmd = h('input', { id: 'term-cmd', type: 'text', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off',
      placeholder: 'empty: the image\'s shell', 'aria-describedby': 'term-help' });
    const replica = h('select', { id: 'term-replica' });
    const run = h('button', { type: 'submit', id: 'term-run' }, 'Run');
    const startForm = h('form', { class: 'term-start', id: 'term-start' },
      h('label', { for: 'term-cmd' }, 'Command'), cmd,
      h('span', { class: 'nowrap' }, h('label', { for: 'term-replica' }, 'Replica'), ' ', replica, ' ', run));
    const help = h('p', { id: 'term-help', class: 'help' },
      'Runs in the replica\'s container with a terminal (a TTY) sized to this panel. Spaces separate arguments; quote with \'…\' or "…". ',
      'Type into the terminal; Shift+Escape leaves it. ',
      'An event records who ran which program (never its arguments or output).');
    const screen = h('div', { class: 'term-screen', id: 'term-out', hidden: true });
    const ctrlC = h('button', { type: 'button', class: 'secondary', id: 'term-ctrl-c', disabled: true, title: 'Send Ctrl-C (interrupt)' }, 'Ctrl-C');
    const ctrlD = h('button', { type: 'button', class: 'secondary', id: 'term-ctrl-d', disabled: true, title: 'Send Ctrl-D (end of input)' }, 'Ctrl-D');
    const close = h('button', { type: 'button', class: 'secondary', id: 'term-close', disabled: true }, 'End session');
    const reader = h('input', { type: 'checkbox', id: 'term-reader' });
    const status = h('p', { class: 'term-status muted', id: 'term-status', role: 'status' }, 'No session.');
    const problem = h('div');
    const el = section('terminal', 'Terminal', startForm, help, problem, screen,
      h('div', { class: 'toolbar term-keys' }, ctrlC, ctrlD, close,
        h('label', { class: 'check' }, reader, ' Screen reader mode (the output as text lines)')),
      status);
    el.classList.add('wide');
    let ws = null;
    let term = null; // xterm.js's Terminal, made for the first session
    let fit = null;
    const encoder = new TextEncoder();
    const sendInput = (data) => {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(typeof data === 'string' ? encoder.encode(data) : data);
    };
    const setRunning = (on) => {
      for (const b of [ctrlC, ctrlD, close]) b.disabled = !on;
      run.disabled = on;
      cmd.disabled = on;
      replica.disabled = on;
      if (term) {
        term.options.disableStdin = !on;
        term.options.cursorBlink = on;
      }
    };

    startForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      let argv;
      try {
        argv = splitCommand(cmd.value.trim());
      } catch (e) {
        problem.replaceChildren(h('p', { class: 'problem', role: 'alert' }, 'The command cannot be read: ' + e.message));
        return;
      }
      start(argv, Number(replica.value || 0));
    });
    ctrlC.addEventListener('click', () => { sendInput('\x03'); term?.focus(); });
    ctrlD.addEventListener('click', () => { sendInput('\x04'); term?.focus(); });
    close.addEventListener('click', () => ws?.close(1000, 'closed by the user'));
    reader.addEventListener('change', () => { if (term) term.options.screenReaderMode = reader.checked; });

    // The panel's size is the TTY's: the server is told each change.
    const refit = later(() => {
      if (!term || screen.hidden || !screen.isConnected) return;
      try {
        fit.fit();
      } catch {
        // Not laid out (the panel is hidden): the next change fits it.
      }
    }, 100);
    const resized = new ResizeObserver(() => refit());
    disposers.push(() => { resized.disconnect(); refit.cancel(); term?.dispose(); });

    async function makeTerminal() {
      const lib = await loadXterm();
      if (term) return;
      term = new lib.Terminal({
        cursorBlink: true, scrollback: 5000, fontSize: 14, screenReaderMode: reader.checked,
        fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
      });
      fit = new lib.FitAddon();
      term.loadAddon(fit);
      screen.hidden = false;
      term.open(screen);
      fit.fit();
      term.onData((d) => sendInput(d));
      term.onBinary((d) => sendInput(Uint8Array.from(d, (c) => c.charCodeAt(0))));
      term.onResize(({ rows, cols }) => {
        if (ws && ws.readyState === WebSocket.OPEN && ws.started) ws.send(JSON.stringify({ type: 'resize', rows, cols }));
      });
      term.attachCustomKeyEventHandler((e) => {
        if (e.type === 'keydown' && e.key === 'Escape' && e.shiftKey) {
          (close.disabled ? cmd : close).focus();
          return false;
        }
        return true;
      });
      resized.observe(screen);
      // The test (and anyone curious in the console) reads the output here.
      screen.panelxText = () => bufferText(term);
    }

    async function start(argv, index) {
      problem.replaceChildren();
      status.textContent = 'Loading the terminal…';
      delete status.dataset.exit;
      setRunning(true);
      try {
        await makeTerminal();
      } catch (e) {
        if (signal.aborted) return;
        problem.replaceChildren(errorBox(e, 'Terminal'));
        status.textContent = 'No session.';
        setRunning(false);
        return;
      }
      if (signal.aborted) return;
      term.reset();
      setRunning(true);
      status.textContent = 'Connecting…';
      let opened = false;
      let ended = false;
      let serverError = null;
      try {
        ws = socket(svcPath('exec'));
      } catch (e) {
        problem.replaceChildren(errorBox(e, 'Terminal'));
        setRunning(false);
        return;
      }
      const mine = ws;
      mine.onopen = () => {
        opened = true;
        const msg = { type: 'start', replica: index, rows: term.rows, cols: term.cols };
        if (argv.length) msg.cmd = argv;
        mine.send(JSON.stringify(msg));
        mine.started = true;
        status.textContent = 'Starting…';
      };
      mine.onmessage = (ev) => {
        if (typeof ev.data !== 'string') {
          term.write(new Uint8Array(ev.data));
          return;
        }
        let m;
        try {
          m = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (m.type === 'started') {
          status.textContent = `Running in ${m.container || 'the container'}.`;
          term.focus();
        } else if (m.type === 'exit') {
          ended = true;
          status.textContent = `The command exited with code ${m.code}.`;
          status.dataset.exit = String(m.code);
        } else if (m.type === 'error') {
          serverError = new APIError(m.status, { title: STATUS_TEXT[m.status] || '', detail: m.message });
        }
      };
      mine.onclose = async (ev) => {
        if (ws === mine) ws = null;
        events.refresh(); // the session's audit event
        setRunning(false);
        if (signal.aborted) return;
        if (serverError) {
          problem.replaceChildren(errorBox(serverError, 'Terminal'));
          status.textContent = 'The session ended.';
        } else if (!opened) {
          const err = await refusal(svcPath('exec'));
          if (signal.aborted) return;
          if (!failure(err || new APIError(0, { title: 'Network error', detail: 'the terminal did not connect' }), problem, 'Terminal')) {
            status.textContent = 'No session.';
          }
        } else if (!ended) {
          status.textContent = ev.reason ? `The session ended: ${ev.reason}.` : 'The session ended.';
        }
        if (document.activeElement === document.body || screen.contains(document.activeElement)) cmd.focus();
      };
    }

    return {
      el,
      update(s) {
        const n = Math.max(s.spec.replicas ?? 1, 1);
        if (replica.options.length !== n) {
          const keep = replica.value;
          replica.replaceChildren(...Array.from({ length: n }, (_, i) => h('option', { value: String(i) }, String(i))));
          replica.value = keep !== '' && Number(keep) < n ? keep : '0';
        }
      },
      stop() { ws?.close(1000); },
    };
  }

  // ---- revisions ----

  function revisionsPanel() {
    const prev = h('button', { type: 'button', id: 'rollback-prev', class: 'secondary' }, 'Roll back to the previous revision');
    const result = h('div', { class: 'action-result', id: 'rollback-result', 'aria-live': 'polite' });
    const status = h('p', { class: 'muted' }, 'Loading…');
    const list = h('ol', { class: 'revisions', 'aria-label': 'Revisions of ' + name });
    const el = section('revisions', 'Revisions', h('div', { class: 'actions' }, prev), result, status, list);
    let loadedFor = '';

    const rollback = async (revision) => {
      const updated = await post(svcPath('rollback'), revision ? { revision } : undefined, { signal });
      load(true);
      const cause = (updated.metadata.annotations || {})['panelx.dev/change-cause'] || 'rollback';
      return `${cause[0].toUpperCase() + cause.slice(1)}: generation ${updated.metadata.generation} is being applied.`;
    };
    action(prev, result, 'Rollback', () => rollback(0));

    async function load(force) {
      const ro = (svc && svc.status && svc.status.rollout) || {};
      const key = `${ro.revision || 0}/${ro.readyRevision || 0}/${svc ? svc.metadata.generation : 0}`;
      if (!force && key === loadedFor) return;
      loadedFor = key;
      try {
        const res = await get(svcPath('revisions'), { signal });
        const items = res.items || [];
        status.className = items.length ? 'sr-only' : 'muted';
        status.textContent = items.length
          ? `${items.length} revision${items.length === 1 ? '' : 's'}, newest first`
          : 'No revision yet: one is recorded when the service first runs.';
        list.replaceChildren(...items.map((r) => revisionItem(r, ro)));
      } catch (e) {
        if (failure(e, status, 'Revisions')) return;
        status.className = '';
      }
    }

    function revisionItem(r, ro) {
      const current = r.number === ro.revision;
      const cause = r.cause || {};
      const image = r.imageDigest || r.imageID || (r.spec && r.spec.image) || '';
      const button = current ? null
        : h('button', { type: 'button', class: 'secondary small', 'data-revision': String(r.number), 'aria-label': `Roll back to revision ${r.number}` }, 'Roll back');
      if (button) action(button, result, `Rollback to revision ${r.number}`, () => rollback(r.number));
      const what = [cause.message, cause.fields && cause.fields.length ? 'changed ' + cause.fields.join(', ') : '', cause.by ? 'by ' + cause.by : '']
        .filter(Boolean).join('; ');
      return h('li', { class: 'rev' + (current ? ' current' : ''), 'data-revision': String(r.number) },
        h('div', { class: 'rev-main' },
          h('div', { class: 'rev-head' },
            h('strong', {}, `Revision ${r.number}`),
            current ? h('span', { class: 'tag tag-current' }, 'running') : null,
            r.number === ro.readyRevision ? h('span', { class: 'tag' }, 'last ready') : null,
            h('span', { class: 'muted' }, ' created ', timeEl(r.createdAt), ' · ',
              r.readyAt ? ['ready ', timeEl(r.readyAt)] : 'never ready')),
          what ? h('div', { class: 'rev-cause' }, what) : null,
          image ? h('code', { class: 'rev-image', title: image }, image.replace(/@sha256:([0-9a-f]{12})[0-9a-f]+$/, '@sha256:$1…').replace(/^sha256:([0-9a-f]{12}).*/, 'image $1')) : null),
        button);
    }

    return { el, update() { load(false); } };
  }

  // ---- events ----

  function eventsPanel() {
    const status = h('p', { class: 'muted' }, 'Loading…');
    const list = h('ol', { class: 'events timeline', id: 'svc-events', tabindex: '0', 'aria-label': 'Events of ' + name });
    const el = section('events', 'Events', status, list);
    async function load() {
      try {
        const res = await get(projectPath(project, 'events'), { query: { kind: 'Service', name, limit: 50 }, signal });
        const items = res.items || [];
        status.className = items.length ? 'sr-only' : 'muted';
        status.textContent = items.length ? `${items.length} most recent events, newest first` : 'No events yet.';
        list.replaceChildren(...items.map((e) => eventItem(e, false)));
      } catch (e) {
        if (failure(e, status, 'Events')) return;
        status.className = '';
      }
    }
    const refresh = later(load, 1000);
    // Events that change nothing the watch shows (a terminal session, a
    // pull) still come in.
    const poll = setInterval(() => { if (started && !signal.aborted) refresh(); }, 15000);
    disposers.push(() => { refresh.cancel(); clearInterval(poll); });
    return { el, load, refresh };
  }

  // ---- live ----

  const render = later(() => {
    if (!w.synced) return;
    summary.removeAttribute('aria-busy');
    const s = w.objects.get(`Service ${project}/${name}`);
    if (!s) {
      svc = null;
      title.textContent = name;
      stateEl.replaceChildren(badge('Unknown', 'Not available'));
      summary.textContent = started
        ? 'This service was deleted, or you may no longer see it.'
        : `No service ${name} in project ${project} (or you may not see it).`;
      for (const sec of grid.querySelectorAll('section')) sec.hidden = true;
      stopStreams();
      return;
    }
    svc = s;
    for (const sec of [statusSec, metrics.el, logs.el, term.el, revisions.el, events.el]) sec.hidden = false;
    renderStatus(s);
    build.update(s);
    term.update(s);
    files.update(s);
    revisions.update();
    env.markFirstStatus?.();
    if (!started) {
      started = true;
      logs.start();
      metrics.start();
      events.load();
    } else {
      events.refresh();
    }
  }, 40);

  let streamsStopped = false;
  function stopStreams() {
    if (streamsStopped || !started) return;
    streamsStopped = true;
    ctl.abort();
    metrics.stop();
    term.stop();
    build.stop();
  }

  const w = new Watch({ project, kind: 'Service', name }, {
    change: render,
    state: (s) => { setLive(s); if (s.phase === 'live') render(); },
    fatal: (e) => {
      if (isAuthError(e)) return authFailed(e);
      title.textContent = 'Service not available';
      summary.removeAttribute('aria-busy');
      summary.textContent = '';
      failed.replaceChildren(errorBox(e));
      setLive(null);
    },
  });

  return {
    dispose() {
      w.close();
      render.cancel();
      ctl.abort();
      metrics.stop();
      term.stop();
      build.stop();
      for (const d of disposers) d();
    },
  };
}
