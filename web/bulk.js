// bulk.js: proposed mappings, most confident first, filterable, with
// checkboxes and "Accept selected (N)": one POST /v1/review/bulk after a
// confirmation, applied in one transaction (all or nothing).
import {api} from './api.js';
import {h, mount, fmt} from './dom.js';
import {canDecide, toast, confirmBox, errorText} from './app.js';

export async function bulkView(root) {
  const r = await api('/v1/mappings?status=proposed&limit=1000');
  const all = r.mappings.slice().sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity) || a.query_id.localeCompare(b.query_id));
  const picked = new Set();
  const decide = canDecide();
  const filter = h('input', {id: 'bulk-filter', type: 'search', oninput: () => draw()});
  const minScore = h('input', {id: 'bulk-min', type: 'number', step: '0.1', oninput: () => draw()});
  const count = h('p.counts', {id: 'bulk-count'});
  const body = h('tbody');
  const acceptBtn = h('button.accept', {type: 'button', id: 'bulk-accept', onclick: () => acceptSelected()});
  const selAll = h('input', {type: 'checkbox', id: 'bulk-all', onchange: () => {
    for (const m of shown()) selAll.checked ? picked.add(m.mapping_key) : picked.delete(m.mapping_key);
    draw();
  }});
  const shown = () => {
    const q = filter.value.trim().toLowerCase(), min = parseFloat(minScore.value);
    return all.filter((m) => (!q || [m.query_id, m.query_name, m.ref_id, m.ref_name].some((x) => (x || '').toLowerCase().includes(q)))
      && (!Number.isFinite(min) || (m.score ?? -Infinity) >= min));
  };
  function draw() {
    const list = shown();
    count.textContent = `${list.length} of ${all.length} proposed mapping(s) shown; ${picked.size} selected`;
    acceptBtn.textContent = `Accept selected (${picked.size})`;
    acceptBtn.disabled = !picked.size;
    mount(body, list.map((m) => {
      const id = 'sel-' + m.mapping_key;
      return h('tr',
        decide ? h('td', h('input', {type: 'checkbox', id, checked: picked.has(m.mapping_key), 'aria-label': `Select ${m.query_id} → ${m.ref_id}`,
          onchange: (ev) => { ev.target.checked ? picked.add(m.mapping_key) : picked.delete(m.mapping_key); draw(); }})) : null,
        h('td', h('a', {href: `#/field/${encodeURIComponent(m.query_vendor)}/${encodeURIComponent(m.query_id)}`}, m.query_id)),
        h('td', m.query_name), h('td', m.ref_id), h('td', m.ref_name), h('td.num', fmt(m.score)));
    }));
  }
  async function acceptSelected() {
    const chosen = all.filter((m) => picked.has(m.mapping_key));
    if (!chosen.length) return;
    if (!(await confirmBox(`Accept ${chosen.length} proposed mapping(s)? They are applied together, all or nothing.`))) return;
    try {
      const res = await api('/v1/review/bulk', {method: 'POST', body: {decisions: chosen.map((m) => ({
        field: m.query_id, field_vendor: m.query_vendor, action: 'accept', ref: m.ref_id, ref_vendor: m.ref_vendor, expect: null}))}});
      toast(`Accepted ${res.applied} mapping(s).`);
      bulkView(root);
    } catch (e) {
      toast(`Nothing was accepted: ${errorText(e)}`);
    }
  }
  mount(root,
    h('h1', 'Bulk review'),
    h('p', 'Proposed mappings, most confident first. Select some and accept them in one step.'),
    h('div.filters.row',
      h('div.field', h('label', {for: 'bulk-filter'}, 'Filter by id or name'), filter),
      h('div.field', h('label', {for: 'bulk-min'}, 'Minimum score'), minScore)),
    count,
    decide ? h('div.row', acceptBtn) : h('p.note', 'Readers see the proposals; accepting needs an analyst token.'),
    h('table.bulk', h('caption.sr', 'Proposed mappings'),
      h('thead', h('tr', decide ? h('th', {scope: 'col'}, h('label.sr', {for: 'bulk-all'}, 'Select all shown'), selAll) : null,
        ['Field', 'Name', 'Proposed reference', 'Reference name', 'Score'].map((t) => h('th', {scope: 'col'}, t)))),
      body));
  draw();
}
