// dash.js: progress per dictionary (GET /v1/review/stats), decisions per
// day as an SVG chart (GET /v1/review/daily), the latest batch runs with a
// live progress bar (GET /v1/batch-runs; admins start one with POST), and
// the exports (GET /v1/mappings/export) as downloads.
import {api, download} from './api.js';
import {h, s, mount} from './dom.js';
import {state, isAdmin, toast, errorText} from './app.js';

const STATES = [['accepted', 'accepted'], ['no_equivalent', 'no equivalent'], ['proposed', 'proposed'],
  ['queued', 'queued'], ['rejected', 'rejected'], ['unmapped', 'unmapped']];

function progress(d) {
  const done = d.accepted + d.no_equivalent;
  return h('section.dict',
    h('h3', `${d.vendor} · ${d.source}`),
    h('p', `${done} of ${d.total} decided (${d.total ? Math.round((100 * done) / d.total) : 0}%)`),
    h('div.stack', {role: 'img', 'aria-label': STATES.map(([k, t]) => `${t} ${d[k]}`).join(', ')},
      STATES.map(([k]) => d[k] ? h('span.seg.s-' + k, {style: `width:${(100 * d[k]) / (d.total || 1)}%`}) : null)),
    h('ul.legend', STATES.map(([k, t]) => h('li', h('span.sw.s-' + k), `${t}: ${d[k]}`))));
}

function chart(items, days) {
  const W = 600, H = 160, pad = 24;
  const byDay = Object.fromEntries(items.map((i) => [i.day, i]));
  const list = [];
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(Date.now() - i * 864e5).toISOString().slice(0, 10);
    list.push(byDay[day] || {day, accepted: 0, rejected: 0, no_equivalent: 0});
  }
  const max = Math.max(1, ...list.map((d) => d.accepted + d.rejected + d.no_equivalent));
  const bw = (W - pad) / list.length;
  const total = list.reduce((a, d) => a + d.accepted + d.rejected + d.no_equivalent, 0);
  return s('svg', {viewBox: `0 0 ${W} ${H + 20}`, role: 'img', 'aria-labelledby': 'chart-t', class: 'chart'},
    s('title', {id: 'chart-t'}, `Decisions per day, last ${days} days: ${total} in all`),
    s('line', {x1: pad, y1: H, x2: W, y2: H, class: 'axis'}),
    s('text', {x: 0, y: 12, class: 'lbl'}, String(max)),
    list.map((d, i) => {
      let y = H;
      const segs = [['accepted', d.accepted], ['no_equivalent', d.no_equivalent], ['rejected', d.rejected]].map(([k, n]) => {
        const hh = (n / max) * (H - 10);
        y -= hh;
        return n ? s('rect', {x: pad + i * bw + 1, y, width: Math.max(1, bw - 2), height: hh, class: 'c-' + k},
          s('title', {}, `${d.day}: ${n} ${k.replace('_', ' ')}`)) : null;
      });
      return [segs, i % 7 === 0 ? s('text', {x: pad + i * bw, y: H + 14, class: 'lbl'}, d.day.slice(5)) : null];
    }));
}

function runsTable(runs) {
  return runs.length ? h('table.runs',
    h('thead', h('tr', ['Run', 'Status', 'Progress', 'Fields', 'Proposed', 'Queued', 'Started'].map((t) => h('th', {scope: 'col'}, t)))),
    h('tbody', runs.slice(0, 5).map((r) => {
      const pct = Math.round(100 * ((r.progress && r.progress.fraction) || 0));
      return h('tr',
        h('td', String(r.run)), h('td', r.status),
        h('td', h('span.bar', {role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct, 'aria-label': `run ${r.run} progress`},
          h('span.bar-fill', {style: `width:${pct}%`})), ` ${pct}%`),
        h('td.num', String(r.n_fields ?? '')), h('td.num', String(r.total ? r.total.n_proposed : '')),
        h('td.num', String(r.total ? r.total.n_queued : '')), h('td', r.started_at || ''));
    }))) : h('p', 'No batch run yet.');
}

export async function dashView(root) {
  const [stats, daily, runs] = await Promise.all([api('/v1/review/stats'), api('/v1/review/daily?days=30'), api('/v1/batch-runs')]);
  const runsBox = h('div', {id: 'runs'}, runsTable(runs.runs));
  const dl = (fmt, ext, label) => h('button', {type: 'button', onclick: () =>
    download(`/v1/mappings/export?format=${fmt}&status=all`, `mappings.${ext}`).catch((e) => toast(errorText(e)))}, label);
  mount(root,
    h('h1', 'Dashboard'),
    h('section', {'aria-labelledby': 'prog-h'}, h('h2', {id: 'prog-h'}, 'Progress per dictionary'),
      stats.dictionaries.length ? stats.dictionaries.map(progress) : h('p', 'No query dictionary imported.')),
    h('section', {'aria-labelledby': 'day-h'}, h('h2', {id: 'day-h'}, 'Decisions per day'), chart(daily.items, 30),
      h('ul.legend', [['accepted', 'accepted or picked'], ['no_equivalent', 'no equivalent'], ['rejected', 'rejected']].map(([k, t]) => h('li', h('span.sw.c-' + k), t)))),
    h('section', {'aria-labelledby': 'runs-h'}, h('h2', {id: 'runs-h'}, 'Batch runs'),
      isAdmin() ? h('button', {type: 'button', id: 'start-run', onclick: async () => {
        try {
          const r = await api('/v1/batch-runs', {method: 'POST', body: {}});
          toast(`Batch run ${r.run} started.`);
          poll();
        } catch (e) { toast(errorText(e)); }
      }}, 'Start a batch run') : null,
      runsBox),
    h('section', {'aria-labelledby': 'exp-h'}, h('h2', {id: 'exp-h'}, 'Exports'),
      h('div.row', dl('csv', 'csv', 'Download CSV'), dl('jsonl', 'jsonl', 'Download JSON Lines'))));
  // Live progress: poll while a run is active, only while this view shows.
  let timer = null;
  async function poll() {
    clearTimeout(timer);
    try {
      const r = await api('/v1/batch-runs');
      mount(runsBox, runsTable(r.runs));
      if (r.runs.some((x) => x.status === 'running')) timer = setTimeout(poll, 1000);
    } catch { /* the next view takes over */ }
  }
  if (runs.runs.some((x) => x.status === 'running')) poll();
  state.stop = () => clearTimeout(timer);
}
