// tokens.js: token administration for admins (GET/POST /v1/admin/tokens,
// DELETE /v1/admin/tokens/{id}): list, create (the secret is shown once),
// revoke after a confirmation.  Other roles are told the page is theirs not.
import {api} from './api.js';
import {h, mount} from './dom.js';
import {isAdmin, toast, confirmBox, errorText} from './app.js';

export async function tokensView(root) {
  if (!isAdmin()) return mount(root, h('h1', 'Tokens'), h('p.note', 'Token administration needs an admin token.'));
  const list = await api('/v1/admin/tokens');
  const owner = h('input', {id: 'tok-owner', required: true, maxlength: 64});
  const role = h('select', {id: 'tok-role'}, ['reader', 'analyst', 'admin'].map((r) => h('option', {value: r, selected: r === 'analyst'}, r)));
  const secret = h('div', {id: 'tok-secret', 'aria-live': 'polite'});
  const form = h('form.filters', {onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const t = await api('/v1/admin/tokens', {method: 'POST', body: {owner: owner.value.trim(), role: role.value}});
      await tokensView(root);
      mount(document.getElementById('tok-secret'), h('p.note', `Token for ${t.owner} (${t.role}), shown this once: `, h('code', t.secret)));
    } catch (e) { toast(errorText(e)); }
  }},
  h('div.field', h('label', {for: 'tok-owner'}, 'Owner'), owner),
  h('div.field', h('label', {for: 'tok-role'}, 'Role'), role),
  h('button', {type: 'submit'}, 'Create token'));
  mount(root, h('h1', 'Tokens'), form, secret,
    h('table', h('thead', h('tr', ['Id', 'Owner', 'Role', 'Created', 'Last used', 'Revoked', ''].map((t) => h('th', {scope: 'col'}, t)))),
      h('tbody', list.tokens.map((t) => h('tr',
        h('td', String(t.id)), h('td', t.owner), h('td', t.role), h('td', t.created_at),
        h('td', t.last_used_at || '–'), h('td', t.revoked_at || '–'),
        h('td', t.revoked_at ? '' : h('button', {type: 'button', onclick: async () => {
          if (!(await confirmBox(`Revoke token ${t.id} of ${t.owner}? Its holder is signed out at once.`))) return;
          try { await api(`/v1/admin/tokens/${t.id}`, {method: 'DELETE'}); toast(`Token ${t.id} revoked.`); tokensView(root); } catch (e) { toast(errorText(e)); }
        }}, `Revoke token ${t.id}`)))))));
}
