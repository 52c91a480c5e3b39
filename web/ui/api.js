// The PanelX API client of the dashboard.
//
// The API's base URL is derived from this module's own URL
// (<prefix>/ui/api.js → <prefix>/), so the page works behind a path prefix
// or the edge without configuration. The credential lives in sessionStorage
// (this tab only) and travels in the Authorization header, never in a URL:
// a PanelX API token, or the access token of a Supabase session (auth.js),
// which supabase-js keeps and refreshes.

export const base = new URL('../', import.meta.url);

const KEY = 'panelx.token';
// SUPABASE_KEY is where supabase-js keeps a Supabase session (auth.js).
export const SUPABASE_KEY = 'panelx.supabase';

let access = ''; // the Supabase session's access token, set by auth.js

// storedAccess is the access token of the stored Supabase session while it
// has a minute left, so that a reload shows the page at once; supabase-js
// (loaded meanwhile) refreshes it.
function storedAccess() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SUPABASE_KEY) || 'null');
    if (s && typeof s.access_token === 'string' && s.expires_at * 1000 > Date.now() + 60000) return s.access_token;
  } catch {
    // Not what supabase-js writes: auth.js reads it properly.
  }
  return '';
}

export const token = {
  get: () => sessionStorage.getItem(KEY) || access || (access = storedAccess()),
  set: (t) => sessionStorage.setItem(KEY, t),
  // setAccess: the Supabase session's current access token ('' when it ended).
  setAccess: (t) => { access = t || ''; },
  // supabase: the tab is signed in through Supabase (a session is stored).
  supabase: () => !sessionStorage.getItem(KEY) && sessionStorage.getItem(SUPABASE_KEY) !== null,
  clear: () => {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(SUPABASE_KEY);
    access = '';
  },
};

// APIError carries the API's answer: an RFC 9457/7807 problem document
// (title, status, detail, errors) when the API sent one.
export class APIError extends Error {
  constructor(status, problem) {
    const p = problem || {};
    let msg = p.detail || p.title || (status ? `HTTP ${status}` : 'no answer');
    if (Array.isArray(p.errors) && p.errors.length > 1) {
      msg += ' — ' + p.errors.map((e) => (e.field ? e.field + ': ' : '') + (e.detail || e.type || '')).join('; ');
    }
    super(msg);
    this.name = 'APIError';
    this.status = status;
    this.problem = p;
  }

  // reason is what the page shows: the API's own words, and the status.
  get reason() {
    const p = this.problem;
    const head = this.status ? `${this.status} ${p.title || ''}`.trim() : 'Network error';
    return `${head}: ${this.message}` + (p.requestId ? ` (request ${p.requestId})` : '');
  }
}

export function apiURL(path, query) {
  const u = new URL(path, base);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  }
  return u;
}

async function problemOf(res) {
  const ct = res.headers.get('Content-Type') || '';
  let p = {};
  try {
    if (ct.includes('json')) {
      p = await res.json();
    } else {
      const text = (await res.text()).trim();
      if (text) p = { detail: text.slice(0, 500) };
    }
  } catch {
    // The body was not what it said: the status alone must do.
  }
  return new APIError(res.status, p);
}

function headers(tok, accept) {
  const h = { Accept: accept };
  const t = tok ?? token.get();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

async function send(url, init) {
  try {
    return await fetch(url, { cache: 'no-store', credentials: 'omit', redirect: 'error', ...init });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, { title: 'Network error', detail: 'the server did not answer (' + e.message + ')' });
  }
}

// request calls the API and returns its JSON answer, or throws an APIError.
// A string or Blob (a File) body goes as is, with contentType (default
// JSON); anything else as JSON.
export async function request(method, path, { query, body, signal, tok, contentType } = {}) {
  const init = { method, headers: headers(tok, 'application/json'), signal };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Blob ? body : JSON.stringify(body);
    init.headers['Content-Type'] = contentType || 'application/json';
  }
  const res = await send(apiURL(path, query), init);
  if (!res.ok) throw await problemOf(res);
  // Some answers have no body (204, a 202 that only says accepted).
  const text = res.status === 204 ? '' : await res.text();
  return text.trim() ? JSON.parse(text) : null;
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts) => request('POST', path, { ...opts, body });

// open starts a streaming GET (logs, build logs): the Response once the API
// accepted, or an APIError with its problem document.
export async function open(path, { query, accept, signal } = {}) {
  const res = await send(apiURL(path, query), { headers: headers(null, accept || '*/*'), signal });
  if (!res.ok) throw await problemOf(res);
  return res;
}

// lines yields the lines of a streamed text body as they arrive (without
// their newline; a last line without one too).
export async function* lines(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let end;
      while ((end = buf.indexOf('\n')) >= 0) {
        yield buf.slice(0, end);
        buf = buf.slice(end + 1);
      }
    }
    if (buf) yield buf;
  } finally {
    reader.releaseLock();
  }
}

// socket opens a WebSocket to the API. A browser cannot set the
// Authorization header of an upgrade, so the token travels as the
// subprotocol panelx.bearer.<token> (never in the URL); the server answers
// with panelx.v1.
export function socket(path, query) {
  const u = apiURL(path, query);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(u, ['panelx.v1', 'panelx.bearer.' + token.get()]);
  ws.binaryType = 'arraybuffer';
  return ws;
}

// refusal explains a WebSocket the server refused before the upgrade (the
// browser hides the answer): the same URL as a plain GET, which the API
// checks the same way. A 426 (this endpoint is a WebSocket) means the
// credential and access were fine and the reason is elsewhere.
export async function refusal(path, query) {
  try {
    const res = await send(apiURL(path, query), { headers: headers(null, 'application/json') });
    if (res.ok) {
      res.body?.cancel();
      return null;
    }
    const err = await problemOf(res);
    return err.status === 426 ? null : err;
  } catch (e) {
    return e;
  }
}

export const projectPath = (project, ...rest) =>
  ['api/v1/projects', encodeURIComponent(project), ...rest].join('/');

// stream reads GET api/v1/watch as Server-Sent Events through fetch (an
// EventSource cannot send the Authorization header). onEvent gets each
// event's JSON; the promise ends when the server closes the stream.
export async function stream(query, onEvent, signal) {
  const res = await send(apiURL('api/v1/watch', query), { headers: headers(null, 'text/event-stream'), signal });
  if (!res.ok) throw await problemOf(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(5).replace(/^ /, '');
      }
      if (data) onEvent(JSON.parse(data));
    }
  }
}

export const objectKey = (kind, o) => `${kind} ${o.metadata.project || ''}/${o.metadata.name}`;

// Watch keeps a live copy of what the watch stream says, reconnecting with
// backoff. Until SYNCED it gathers the state aside, so a reconnect replaces
// the copy at once (objects deleted meanwhile go) and nothing half-loaded is
// shown. Callbacks: change() after every update, state(s) with
// {phase: 'connecting'|'live'|'retrying', error, retryIn}, fatal(err) when
// the API refuses the stream (the caller decides; no retry).
export class Watch {
  constructor(query, { change, state, fatal }) {
    this.query = query;
    this.cb = { change, state, fatal };
    this.objects = new Map();
    this.synced = false;
    this.ctl = new AbortController();
    this.run();
  }

  close() {
    this.ctl.abort();
  }

  list(kind) {
    const out = [];
    for (const [k, o] of this.objects) if (k.startsWith(kind + ' ')) out.push(o);
    return out;
  }

  async run() {
    const signal = this.ctl.signal;
    let backoff = 500;
    // rotated: the stream ended with its credential (the server ends it
    // when the token it was opened with expires) and a refreshed one is
    // there: reconnect at once, without saying so.
    let rotated = false;
    while (!signal.aborted) {
      let next = new Map();
      let synced = false;
      let lastError = '';
      if (!rotated) this.cb.state({ phase: this.synced ? 'retrying' : 'connecting' });
      rotated = false;
      const used = token.get();
      try {
        await stream(this.query, (ev) => {
          const target = synced ? this.objects : next;
          switch (ev.type) {
            case 'ADDED':
            case 'MODIFIED':
              target.set(objectKey(ev.kind, ev.object), ev.object);
              break;
            case 'DELETED':
              target.delete(objectKey(ev.kind, ev.object));
              break;
            case 'SYNCED':
              if (!synced) {
                synced = true;
                this.synced = true;
                this.objects = next;
                next = null;
                backoff = 500;
                this.cb.state({ phase: 'live' });
              }
              break;
            case 'ERROR':
              lastError = ev.message || 'the server ended the stream';
              return;
            default:
              return;
          }
          if (synced) this.cb.change();
        }, signal);
        if (signal.aborted) return;
        lastError = lastError || 'the server closed the stream';
      } catch (e) {
        if (signal.aborted || e.name === 'AbortError') return;
        if (e instanceof APIError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429 &&
          !(e.status === 401 && token.get() !== used)) {
          this.cb.fatal(e);
          return;
        }
        lastError = e instanceof APIError ? e.reason : String(e.message || e);
      }
      if (this.synced && token.get() && token.get() !== used) {
        rotated = true;
        continue;
      }
      this.cb.state({ phase: 'retrying', error: lastError, retryIn: backoff });
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, 15000);
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
