// app.js: the review app's shell: sign-in, the header, routing between the
// views (#/queue, #/field/VENDOR/ID, #/bulk, #/dashboard, #/tokens), the keyboard help,
// messages.  The views live in their own modules.
import {api, token, ApiError} from './api.js';
import {h, mount} from './dom.js';
import {queueView} from './queue.js';
import {fieldView} from './field.js';
import {bulkView} from './bulk.js';
import {dashView} from './dash.js';
import {tokensView} from './tokens.js';

// What every view shares: who is signed in, the queue as last listed (for
// j/k and "next field"), the last decision (for undo).
export const state = {
  me: null,           // {owner, role}
  filters: {},        // queue filters
  queue: [],          // [{vendor, id}] of the last queue page
  last: null,         // the last decision, for undo
  stop: null,         // the current view's clean-up (timers)
};

export const canDecide = () => state.me && (state.me.role === 'analyst' || state.me.role === 'admin');
export const isAdmin = () => state.me && state.me.role === 'admin';

const main = () => document.getElementById('main');

export function toast(msg) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ''; }, 6000);
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// Ask for confirmation in a modal dialog; resolves true when confirmed.
export function confirmBox(text) {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  d.returnValue = '';
  d.showModal();
  document.getElementById('confirm-ok').focus();
  return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), {once: true}));
}

export function errorText(e) {
  if (e instanceof ApiError) {
    if (e.status === 401) return 'Your token was not accepted (401): sign in again.';
    if (e.status === 403) return `Your role cannot do this (403): ${e.message}`;
    return `${e.message} (HTTP ${e.status})`;
  }
  return String(e && e.message ? e.message : e);
}

function signInView(message) {
  document.querySelector('header.top').hidden = true;
  const input = h('input', {id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true});
  const err = h('p.error', {id: 'signin-error', role: 'alert'}, message || '');
  const form = h('form.signin', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const t = input.value.trim();
      try {
        state.me = await api('/v1/me', {tok: t});
        token.set(t);
        go(location.hash && !location.hash.startsWith('#/signin') ? location.hash : '#/queue');
      } catch (e) {
        err.textContent = e instanceof ApiError && e.status === 401
          ? 'That token was not accepted: check it and try again.' : errorText(e);
        input.focus();
      }
    }},
    h('h1', 'Sign in'),
    h('p', 'Paste the API token you were given (fieldmatch token create). It is kept for this tab only.'),
    h('label', {for: 'token'}, 'API token'), input, h('button', {type: 'submit'}, 'Sign in'), err);
  mount(main(), form);
  input.focus();
}

async function route() {
  if (state.stop) { state.stop(); state.stop = null; }
  if (!token.get()) return signInView();
  if (!state.me) {
    try { state.me = await api('/v1/me'); } catch (e) {
      token.clear();
      return signInView(e instanceof ApiError && e.status === 401 ? 'Your token is no longer accepted: sign in again.' : errorText(e));
    }
  }
  document.querySelector('header.top').hidden = false;
  document.getElementById('who').textContent = `${state.me.owner} (${state.me.role})`;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  for (const a of document.querySelectorAll('nav a'))
    a.toggleAttribute('aria-current', a.getAttribute('href') === '#/' + parts[0]);
  document.getElementById('nav-tokens').hidden = !isAdmin();
  const view = {field: fieldView, bulk: bulkView, dashboard: dashView, tokens: tokensView}[parts[0]] || queueView;
  try {
    await view(main(), parts.slice(1));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { token.clear(); state.me = null; return signInView('Your token is no longer accepted: sign in again.'); }
    mount(main(), h('h1', 'Something went wrong'), h('p.error', {role: 'alert'}, errorText(e)));
  }
}

function keys(ev) {
  if (ev.key !== '?' || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT')) return;
  ev.preventDefault();
  document.getElementById('keys').showModal();
}

window.addEventListener('hashchange', route);
document.addEventListener('keydown', keys);
document.getElementById('signout').addEventListener('click', () => {
  token.clear();
  state.me = null;
  location.hash = '#/signin';
  signInView('Signed out.');
});
document.getElementById('keys-btn').addEventListener('click', () => document.getElementById('keys').showModal());
route();
