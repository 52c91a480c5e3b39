// Supabase sign-in (loaded by the sign-in page and by a tab signed in
// through Supabase, never by a PanelX token's pages).
//
// The server says in ui/config.json whether it is configured for a Supabase
// project (its URL and anon key, both public). supabase-js (ui/lib/
// supabase.js, bundled from npm by web/build.sh) signs in with email and
// password against the project's Auth API, keeps the session in this tab's
// sessionStorage and refreshes it before it expires; every new access token
// goes to api.js, which sends it to PanelX's API as a Bearer JWT. The API
// verifies it like any Supabase JWT (--jwt-secret or --jwks-url).

import { APIError, base, get, SUPABASE_KEY, token } from './api.js';
import { h } from './dom.js';

let configPromise = null;

// config is what the server says of itself: {supabase: {url, anonKey}} or
// {supabase: null}. Asked once per page load (again after a failure).
export function config() {
  configPromise ??= fetch(new URL('ui/config.json', base), { cache: 'no-store', credentials: 'omit', redirect: 'error' })
    .then((res) => {
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return res.json();
    })
    .catch((e) => {
      configPromise = null;
      throw new Error('the server\'s sign-in settings could not be read: ' + e.message);
    });
  return configPromise;
}

let clientPromise = null;
const endedListeners = new Set();

// onEnded(fn): fn(reason) when the Supabase session ends by itself (its
// refresh token was refused: revoked, or the user was deleted).
export function onEnded(fn) {
  endedListeners.add(fn);
  return () => endedListeners.delete(fn);
}

let signingOut = false;

function client() {
  clientPromise ??= (async () => {
    const cfg = await config();
    if (!cfg.supabase) throw new Error('this server is not configured for Supabase sign-in');
    let lib;
    try {
      lib = await import('./lib/supabase.js');
    } catch (e) {
      throw new Error('this binary was built without the dashboard\'s npm bundles (make build builds them): ' + e.message);
    }
    const c = lib.createClient(cfg.supabase.url, cfg.supabase.anonKey, {
      auth: {
        storage: sessionStorage, // this tab only, like a PanelX token
        storageKey: SUPABASE_KEY,
        persistSession: true,
        autoRefreshToken: true,
        detectSessionInUrl: false, // no credential ever comes in a URL
      },
    });
    c.auth.onAuthStateChange((event, session) => {
      token.setAccess(session ? session.access_token : '');
      if (event === 'SIGNED_OUT' && !signingOut) {
        for (const fn of endedListeners) fn('Your Supabase session ended (its refresh was refused).');
      }
    });
    return c;
  })();
  clientPromise.catch(() => { clientPromise = null; });
  return clientPromise;
}

// AuthRefusal is Supabase Auth's answer to a sign-in, in its own words.
export class AuthRefusal extends Error {
  constructor(e) {
    super(e.message || 'no answer');
    this.name = 'AuthRefusal';
    this.status = e.status || 0;
    this.code = e.code || '';
  }

  get reason() {
    if (!this.status) return `Supabase Auth did not answer: ${this.message}`;
    return `Supabase Auth refused (${this.status}${this.code ? ', ' + this.code : ''}): ${this.message}`;
  }
}

// signIn signs in with email and password; the session's access token is
// then api.js's credential.
export async function signIn(email, password) {
  const c = await client();
  const { data, error } = await c.auth.signInWithPassword({ email, password });
  if (error) throw new AuthRefusal(error);
  token.setAccess(data.session.access_token);
  return data.session;
}

// resume picks up the session stored in this tab (after a reload), refreshed
// if it is about to expire; false when there is none.
export async function resume() {
  const c = await client();
  const { data, error } = await c.auth.getSession();
  if (error || !data.session) {
    token.setAccess('');
    return false;
  }
  token.setAccess(data.session.access_token);
  return true;
}

// refresh asks for a new access token now (the API refused the current one).
export async function refresh() {
  const c = await client();
  const { data, error } = await c.auth.refreshSession();
  if (error || !data.session) return false;
  token.setAccess(data.session.access_token);
  return true;
}

// signOut ends the session on Supabase Auth (this tab's: scope local) and
// forgets it here even when Auth cannot be reached.
export async function signOut() {
  signingOut = true;
  try {
    const c = await client();
    await c.auth.signOut({ scope: 'local' });
  } catch {
    // Forgotten below all the same.
  } finally {
    signingOut = false;
    sessionStorage.removeItem(SUPABASE_KEY);
    token.setAccess('');
  }
}

// start loads supabase-js for a tab signed in through Supabase, so that it
// refreshes the session (the page runs meanwhile on the stored token).
export function start() {
  return client().then(() => resume());
}

// signInForm is the email and password form of the sign-in page; it shows
// refusals with showError(text, form) in error, and calls signedIn once the
// API takes the session's token.
export function signInForm({ showError, error, signedIn }) {
  const email = h('input', { id: 'sb-email', name: 'email', type: 'email', autocomplete: 'username', spellcheck: 'false', autocapitalize: 'off', required: true });
  const password = h('input', { id: 'sb-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true,
    'aria-describedby': 'sb-help' });
  const button = h('button', { type: 'submit', id: 'sb-signin' }, 'Sign in with Supabase');
  const form = h('form', { class: 'signin-form', id: 'signin-supabase', novalidate: true },
    h('label', { for: 'sb-email' }, 'Email'), email,
    h('label', { for: 'sb-password' }, 'Password'), password,
    h('p', { id: 'sb-help', class: 'help' }, 'Your account of this server\'s Supabase project. The session stays in this tab (sessionStorage) and is refreshed while the page is open.'),
    button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!email.value.trim() || !password.value) {
      showError('Enter your email and password.', form);
      (email.value.trim() ? password : email).focus();
      return;
    }
    button.disabled = true;
    error.hidden = true;
    try {
      await signIn(email.value.trim(), password.value);
    } catch (e) {
      showError(e instanceof AuthRefusal ? e.reason : 'Sign-in failed: ' + e.message, form);
      button.disabled = false;
      password.select();
      password.focus();
      return;
    }
    try {
      await get('api/v1/me'); // does this server take the session's token?
    } catch (e) {
      await signOut();
      showError('Supabase signed you in, but the PanelX API refused the session\'s token: ' + (e instanceof APIError ? e.reason : e.message), form);
      button.disabled = false;
      return;
    }
    password.value = '';
    signedIn();
  });
  return form;
}
