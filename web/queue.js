// queue.js: the review queue, most uncertain first (GET /v1/review/queue),
// filterable by dictionary, category, reason, uncertainty band and text;
// paged; each row a link to the field page whose text is the field id.
// Key j (or Enter outside a control) opens the first field of the page.
import {api, enc} from './api.js';
import {h, mount, fmt} from './dom.js';
import {state, go} from './app.js';

const PAGE = 25;
const BANDS = {'': 'any', high: 'high (≥ 0.66)', mid: 'medium (0.33–0.66)', low: 'low (≤ 0.33)'};
const BAND_Q = {high: '&min_unc=0.66', mid: '&min_unc=0.33&max_unc=0.66', low: '&max_unc=0.33'};

// The query string of the current filters (shared with the field page's
// "next field").
export function filterQuery(f = state.filters) {
  let q = '';
  for (const k of ['vendor', 'category', 'reason', 'q']) if (f[k]) q += `&${k}=${enc(f[k])}`;
  return q + (BAND_Q[f.band] || '');
}

// Fetch a page of the queue with the current filters; remembers the ids.
export async function loadQueue(offset = 0, limit = PAGE) {
  const page = await api(`/v1/review/queue?limit=${limit}&offset=${offset}${filterQuery()}`);
  state.queue = page.items.map((it) => ({vendor: it.field.vendor, id: it.field.id}));
  return page;
}

export async function queueView(root) {
  if (state.stop) { state.stop(); state.stop = null; } // a re-render from the filters or pager
  const f = state.filters;
  const offset = Math.max(0, Number(f.offset) || 0);
  const [page, stats] = await Promise.all([loadQueue(offset), api('/v1/review/stats')]);
  const vendors = [...new Set(stats.dictionaries.map((d) => d.vendor))];
  const apply = (ev) => {
    ev.preventDefault();
    const fd = new FormData(ev.target.closest('form'));
    state.filters = Object.fromEntries([...fd.entries()].filter(([, v]) => v !== ''));
    state.filters.offset = 0;
    queueView(root);
  };
  const sel = (name, label, options) => h('div.field',
    h('label', {for: 'f-' + name}, label),
    h('select', {id: 'f-' + name, name, onchange: apply},
      Object.entries(options).map(([v, t]) => h('option', {value: v, selected: (f[name] || '') === v}, t))));
  const text = (name, label, type = 'text') => h('div.field',
    h('label', {for: 'f-' + name}, label),
    h('input', {id: 'f-' + name, name, type, value: f[name] || ''}));
  const form = h('form.filters', {role: 'search', onsubmit: apply},
    sel('vendor', 'Dictionary', Object.fromEntries([['', 'all'], ...vendors.map((v) => [v, v])])),
    text('category', 'Category'),
    sel('reason', 'Reason', {'': 'any', low_score: 'low score', small_margin: 'small margin', no_candidates: 'no candidates', accepted_rejected: 'accepted, then rejected'}),
    sel('band', 'Uncertainty', BANDS),
    text('q', 'Search id or name', 'search'),
    h('button', {type: 'submit'}, 'Filter'));
  const first = page.total ? offset + 1 : 0, last = offset + page.items.length;
  const rows = page.items.map((it) => h('tr',
    h('td', h('a', {href: `#/field/${enc(it.field.vendor)}/${enc(it.field.id)}`}, it.field.id)),
    h('td', it.field.name),
    h('td', it.field.category),
    h('td', it.reason),
    h('td.num', fmt(it.uncertainty)),
    h('td', it.top ? it.top.ref.id : '–'),
    h('td.num', it.top ? fmt(it.top.score) : '–')));
  const pager = (to) => () => { state.filters.offset = to; queueView(root); };
  const onKey = (ev) => {
    const t = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey || document.querySelector('dialog[open]')) return;
    if (t && /^(INPUT|TEXTAREA|SELECT|BUTTON|A)$/.test(t.tagName)) return;
    if ((ev.key === 'j' || ev.key === 'Enter') && page.items.length) {
      ev.preventDefault();
      const it = page.items[0].field;
      go(`#/field/${enc(it.vendor)}/${enc(it.id)}`);
    }
  };
  document.addEventListener('keydown', onKey);
  state.stop = () => document.removeEventListener('keydown', onKey);
  mount(root,
    h('h1', 'Review queue'),
    h('p.counts', {id: 'queue-count'}, `${page.total} field(s) waiting; showing ${first}–${last}`),
    form,
    page.items.length
      ? h('table.queue', h('caption.sr', 'Fields waiting for review, most uncertain first'),
        h('thead', h('tr', ['Field', 'Name', 'Category', 'Reason', 'Uncertainty', 'Top candidate', 'Score'].map((t) => h('th', {scope: 'col'}, t)))),
        h('tbody', rows))
      : h('p', 'Nothing waits with these filters.'),
    h('div.row.pager',
      h('button', {type: 'button', disabled: offset === 0, onclick: pager(Math.max(0, offset - PAGE))}, 'Previous page'),
      h('button', {type: 'button', disabled: last >= page.total, onclick: pager(offset + PAGE)}, 'Next page')));
}
