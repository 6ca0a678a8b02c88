// The console's only way to the server: the same /v3 and /v2 API the SDK calls, authenticated by
// the session cookie, with the CSRF token on every request that changes something.
let session = null;

export function setSession(value) { session = value; }
export function currentSession() { return session; }
export function projectPath(rest) { return `/v3/${session.project_id}${rest}`; }
export function smnPath(rest) { return `/v2/${session.project_id}/notifications${rest}`; }

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export function queryString(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export async function api(method, path, { query = {}, body, text = false } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session) headers['X-CSRF-Token'] = session.csrf_token;
  const response = await fetch(path + queryString(query), {
    method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let error = { error_code: '', error_msg: response.statusText };
    try { error = await response.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, error.error_code, `${error.error_code} ${error.error_msg}`.trim());
  }
  if (response.status === 204) return null;
  return text ? response.text() : response.json();
}

// Builds an element: el('td', {class: 'x', onclick: f}, 'text', child, ...). Children that are undefined, null or
// false are left out (so `condition && el(...)` adds nothing when the condition fails).
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function formatTime(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC') : '';
}

export function showJson(title, value) {
  const dialog = document.getElementById('json-dialog');
  document.getElementById('json-title').textContent = title;
  document.getElementById('json-body').textContent = JSON.stringify(value, null, 2);
  dialog.showModal();
}

// A labelled input for forms: [label, input].
export function field(id, label, attributes = {}) {
  return [el('label', { for: id }, label), el('input', { id, name: id, ...attributes })];
}

export function errorBox(error) {
  return el('p', { class: 'error', role: 'alert' }, error.message || String(error));
}
