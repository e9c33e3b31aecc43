// api.js: the app's only door to the server: the documented routes of
// api/openapi.yaml, called with the token the analyst typed in (kept in
// sessionStorage: this tab only, never in a URL).

const KEY = 'fieldmatch.token';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.hint)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// Call a route; resolves with the parsed JSON, rejects with ApiError.
export async function api(path, {method = 'GET', body, tok} = {}) {
  const headers = {Authorization: `Bearer ${tok || token.get() || ''}`};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// A file download with the token in the header: fetched, then saved
// through a blob URL (so the token never appears in a link).
export async function download(path, filename) {
  const res = await fetch(path, {headers: {Authorization: `Bearer ${token.get() || ''}`}});
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  const url = URL.createObjectURL(await res.blob());
  const a = Object.assign(document.createElement('a'), {href: url, download: filename});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export const enc = encodeURIComponent;
export const fieldPath = (vendor, id) => `/v1/review/${enc(vendor)}/${enc(id)}`;
