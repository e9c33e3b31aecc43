// field.js: one Bloomberg field and its candidates: decide (accept, reject,
// no equivalent, pick another field), comment, history, undo, and the 409
// flow when someone else decided meanwhile.  Keys: 1-9 accept candidate n,
// x reject the first, 0 no equivalent, j/k next/previous field, / picker,
// u undo.  After a decision the next field of the queue opens at once.
import {api, enc, fieldPath, ApiError} from './api.js';
import {h, mount, bar, fmt} from './dom.js';
import {state, canDecide, toast, go, errorText} from './app.js';
import {loadQueue} from './queue.js';

const PARTS = [['title', 'title'], ['description', 'description'], ['chars', 'character grams'],
  ['lsa', 'LSA'], ['prior', 'prior'], ['penalty', 'penalties']];

// The field's decision as the API's "expect" names it.
const expectOf = (v) => (v.accepted ? v.accepted.ref.id : v.no_equivalent ? 'no_equivalent' : null);
const stateText = (v) => (v.accepted ? `accepted: ${v.accepted.ref.id} (by ${v.accepted.by}, ${v.accepted.at})`
  : v.no_equivalent ? `no equivalent (by ${v.no_equivalent.by}, ${v.no_equivalent.at})` : 'no decision yet');

let keyHandler = null;

export async function fieldView(root, [vendor, id]) {
  const [view, match, hist] = await Promise.all([
    api(fieldPath(vendor, id)),
    api(`/v1/match?field=${enc(id)}&k=10&parts=1`).catch(() => null),
    api(fieldPath(vendor, id) + '/history'),
  ]);
  render(root, vendor, id, view, match, hist, null);
}

function render(root, vendor, id, v, match, hist, conflict) {
  const parts = {}, conf = {};
  for (const c of (match && match.candidates) || []) {
    if (c.parts) parts[c.id] = c.parts;
    if (typeof c.confidence === 'number') conf[c.id] = c.confidence;
  }
  const decide = canDecide();
  const f = v.field;
  const comment = h('textarea', {id: 'comment', rows: 2, maxlength: 4000});
  const maxScore = Math.max(1, ...v.candidates.map((c) => c.score || 0));

  async function send(body, label) {
    const c = comment.value.trim();
    const req = {...body, expect: expectOf(v)};
    if (c) req.comment = c;
    try {
      const after = await api(fieldPath(vendor, id) + '/decisions', {method: 'POST', body: req});
      state.last = {vendor, id, before: expectOf(v), after: expectOf(after), action: body.action, ref: body.ref || null};
      toast(`${id}: ${label}`);
      if (body.action === 'comment') return refresh();
      await next(1, true);
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) return refresh(e);
      toast(errorText(e));
    }
  }
  async function refresh(err) {
    const [nv, nh] = await Promise.all([api(fieldPath(vendor, id)), api(fieldPath(vendor, id) + '/history')]);
    render(root, vendor, id, nv, match, nh, err ? {was: stateText(v), now: stateText(nv), detail: err.message} : null);
  }
  // The field after (dir 1) or before (-1) this one in the queue; after a
  // decision the queue is read again (the decided field has left it).
  async function next(dir, reload) {
    if (reload || !state.queue.length) await loadQueue(0, 50);
    const q = state.queue;
    let i = q.findIndex((x) => x.vendor === vendor && x.id === id);
    i = i < 0 ? (dir > 0 ? 0 : q.length - 1) : i + dir;
    const n = q[i];
    if (!n || (n.vendor === vendor && n.id === id)) {
      if (reload) go('#/queue');
      else toast(dir > 0 ? 'This is the last field of the queue page.' : 'This is the first field of the queue page.');
      return;
    }
    go(`#/field/${enc(n.vendor)}/${enc(n.id)}`);
  }

  const cands = v.candidates.map((c, i) => {
    const p = parts[c.ref.id];
    return h('li.cand' + (c.status ? '.st-' + c.status : ''),
      h('h3', h('span.rank', `${i + 1}.`), ' ', c.ref.id, ' ', h('span.name', c.ref.name)),
      c.status ? h('span.badge', c.status) : null,
      h('p.desc', c.ref.description || '(no description)'),
      h('p.meta', `type: ${c.ref.type || '–'} · category: ${c.ref.category || '–'} · vendor: ${c.ref.vendor}`),
      h('div.bars', c.ref.id in conf ? bar('confidence', conf[c.ref.id], 1, 'conf') : null,
        bar('score', c.score, maxScore, 'score'),
        p ? PARTS.map(([k, label]) => bar(label, p[k], 1, k === 'penalty' ? 'neg' : '')) : null),
      decide ? h('div.row',
        h('button.accept', {type: 'button', onclick: () => send({action: 'accept', ref: c.ref.id, ref_vendor: c.ref.vendor}, `accepted ${c.ref.id}`)}, `Accept ${c.ref.id}`),
        h('button.reject', {type: 'button', onclick: () => send({action: 'reject', ref: c.ref.id, ref_vendor: c.ref.vendor}, `rejected ${c.ref.id}`)}, `Reject ${c.ref.id}`)) : null);
  });

  // The picker: the existing field search, reference fields only.
  const suggestions = h('ul.suggest', {id: 'pick-list', 'aria-live': 'polite'});
  let timer = null;
  const picker = h('input', {id: 'pick', type: 'search', autocomplete: 'off', 'aria-controls': 'pick-list',
    oninput: () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const q = picker.value.trim();
        if (!q) return mount(suggestions);
        try {
          const r = await api(`/v1/fields?q=${enc(q)}&limit=40`);
          const refs = r.fields.filter((x) => x.role === 'reference').slice(0, 8);
          mount(suggestions, refs.length ? refs.map((x) => h('li',
            h('button', {type: 'button', onclick: () => send({action: 'pick', ref: x.id, ref_vendor: x.vendor}, `picked ${x.id}`)}, `Pick ${x.id}`),
            ' ', h('span.name', x.name))) : h('li', 'No reference field matches.'));
        } catch (e) { toast(errorText(e)); }
      }, 150);
    }});

  const undo = h('button', {type: 'button', id: 'undo', disabled: !state.last || !decide, onclick: () => undoLast()}, 'Undo last decision');
  const decisionsFor = h('section.decide', {'aria-labelledby': 'decide-h'},
    h('h2', {id: 'decide-h'}, 'Decide'),
    h('label', {for: 'comment'}, 'Comment (kept with the decision)'), comment,
    h('div.row',
      h('button.none', {type: 'button', onclick: () => send({action: 'no_equivalent'}, 'no equivalent')}, 'No equivalent'),
      (v.accepted || v.no_equivalent) ? h('button', {type: 'button', onclick: () => {
        if (!comment.value.trim()) { toast('Write the comment first.'); comment.focus(); return; }
        send(v.accepted ? {action: 'comment', ref: v.accepted.ref.id, ref_vendor: v.accepted.ref.vendor} : {action: 'comment'}, 'comment added');
      }}, 'Add comment to the current decision') : null,
      undo),
    h('label', {for: 'pick'}, 'Pick another field'), picker, suggestions);

  const history = hist.history.map((r) => h('tr',
    h('td', r.at), h('td', r.actor), h('td', r.action),
    h('td', r.after && 'ref' in r.after ? (r.after.ref || 'no equivalent') : r.key),
    h('td', r.before ? r.before.status || '' : ''), h('td', r.after ? r.after.status || '' : ''),
    h('td', (r.after && r.after.comment) || '')));

  mount(root,
    conflict ? h('div.conflict', {role: 'alert', id: 'conflict', tabindex: '-1'},
      h('h2', 'Someone else decided on this field meanwhile'),
      h('p', `When you loaded it: ${conflict.was}. Now: ${conflict.now}.`),
      h('p', 'Your decision was not saved. Look again and decide again.'),
      h('p.detail', conflict.detail)) : null,
    h('div.fieldhead',
      h('h1', f.id),
      h('p.name', f.name),
      h('p.desc', f.description || '(no description)'),
      h('p.meta', `vendor: ${f.vendor} · category: ${f.category || '–'} · type: ${f.type || '–'}`),
      h('p.state', {id: 'field-state'}, stateText(v), v.queued ? ` · in the queue (${v.queue_reason})` : '')),
    h('div.cols',
      h('section.cands', {'aria-labelledby': 'cands-h'},
        h('h2', {id: 'cands-h'}, v.batch_run ? `Candidates (batch run ${v.batch_run})` : 'Candidates'),
        cands.length ? h('ol', cands) : h('p', 'No batch run has ranked this field.')),
      decide ? decisionsFor : h('p.note', {id: 'reader-note'}, `Signed in as ${state.me.role}: you can read everything here; decisions need an analyst token.`)),
    h('section.history', {'aria-labelledby': 'hist-h'},
      h('h2', {id: 'hist-h'}, 'History'),
      history.length ? h('table',
        h('thead', h('tr', ['When', 'Who', 'Action', 'Reference', 'Before', 'After', 'Comment'].map((t) => h('th', {scope: 'col'}, t)))),
        h('tbody', history)) : h('p', 'No decisions yet.')),
    h('p.row', h('button', {type: 'button', onclick: () => next(-1)}, 'Previous field (k)'),
      h('button', {type: 'button', onclick: () => next(1)}, 'Next field (j)')));
  window.scrollTo(0, 0);
  if (conflict) document.getElementById('conflict').focus();

  if (keyHandler) document.removeEventListener('keydown', keyHandler);
  keyHandler = (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT')) {
      if (ev.key === 'Escape') t.blur();
      return;
    }
    if (document.querySelector('dialog[open]')) return;
    const k = ev.key;
    const c = v.candidates;
    if (k === 'j') next(1);
    else if (k === 'k') next(-1);
    else if (k === '/' && decide) { ev.preventDefault(); picker.focus(); }
    else if (!decide) return;
    else if (k >= '1' && k <= '9' && c[k - 1]) send({action: 'accept', ref: c[k - 1].ref.id, ref_vendor: c[k - 1].ref.vendor}, `accepted ${c[k - 1].ref.id}`);
    else if (k === 'x' && c[0]) send({action: 'reject', ref: c[0].ref.id, ref_vendor: c[0].ref.vendor}, `rejected ${c[0].ref.id}`);
    else if (k === '0') send({action: 'no_equivalent'}, 'no equivalent');
    else if (k === 'u') undoLast();
    else return;
    ev.preventDefault();
  };
  document.addEventListener('keydown', keyHandler);
  state.stop = () => { document.removeEventListener('keydown', keyHandler); keyHandler = null; };
}

// Undo: a new decision that restores the field's decision before the last
// one (history keeps both).  The field's page opens with the result.
async function undoLast() {
  const l = state.last;
  if (!l) return toast('Nothing to undo.');
  let body;
  if (l.before === 'no_equivalent') body = {action: 'no_equivalent'};
  else if (l.before) body = {action: 'pick', ref: l.before};
  else if (l.action === 'accept' || l.action === 'pick') body = {action: 'reject', ref: l.ref};
  else if (l.action === 'no_equivalent') body = {action: 'reject'};
  else return toast('Nothing to undo: the rejection did not change the field\'s decision.');
  try {
    await api(fieldPath(l.vendor, l.id) + '/decisions', {method: 'POST', body: {...body, expect: l.after}});
    state.last = null;
    toast(`${l.id}: undone`);
    go(`#/field/${enc(l.vendor)}/${enc(l.id)}`);
  } catch (e) {
    toast(e instanceof ApiError && e.status === 409 ? `${l.id} changed since: open it and decide again.` : errorText(e));
  }
}
