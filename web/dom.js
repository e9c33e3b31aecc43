// dom.js: building the page without HTML strings.  Every text goes through
// a text node (never innerHTML), so field names and descriptions holding
// <, & or quotes are shown as written and can run nothing.

// h('tag.class', {attrs}, ...children): an element.  Attributes named onX
// become listeners; value/checked/disabled/hidden are set as properties;
// children are nodes, strings (text) or arrays; null/false are skipped.
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden') el[k] = v;
    else if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v; // CSSOM: allowed by the CSP, unlike a style attribute
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// SVG elements (the chart), same rules.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

// Replace the children of el.
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// A horizontal bar: value in [0, max], with its number for screen readers.
export function bar(label, value, max, cls = '') {
  const v = Number.isFinite(value) ? value : 0;
  const pct = Math.max(0, Math.min(100, (v / (max || 1)) * 100));
  return h('div.bar-row', h('span.bar-label', label),
    h('span.bar' + (cls ? '.' + cls : ''), {role: 'img', 'aria-label': `${label} ${fmt(v)}`},
      h('span.bar-fill', {style: `width:${pct.toFixed(1)}%`})),
    h('span.bar-num', fmt(v)));
}

export function fmt(x, d = 3) {
  return Number.isFinite(x) ? x.toFixed(d) : '–';
}
