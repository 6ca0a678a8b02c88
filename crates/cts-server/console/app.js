// The console shell: sign-in, navigation between pages by the URL fragment, sign-out.
import { api, setSession, currentSession } from './api.js';
import { tracesPage } from './traces.js';
import { trackersPage, notificationsPage, insightsPage } from './pages.js';
import { integrityPage } from './integrity.js';

const pages = {
  traces: tracesPage, trackers: trackersPage, notifications: notificationsPage,
  integrity: integrityPage, insights: insightsPage,
};
let leave = null;

function show(signedIn) {
  document.getElementById('sign-in').hidden = signedIn;
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  if (!signedIn) document.getElementById('page').replaceChildren();
}

async function route() {
  if (!currentSession()) return;
  const name = location.hash.slice(1) in pages ? location.hash.slice(1) : 'traces';
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.getAttribute('href') === `#${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (leave) leave();
  const page = document.getElementById('page');
  page.replaceChildren();
  leave = await pages[name](page);
}

function signedIn(session) {
  setSession(session);
  document.getElementById('who-name').textContent = `${session.user_name} (${session.role})`;
  show(true);
  route();
}

async function start() {
  const form = document.getElementById('sign-in-form');
  form.addEventListener('change', () => {
    const byKey = form.elements.method.value === 'key';
    form.querySelector('.by-key').hidden = !byKey;
    form.querySelector('.by-password').hidden = byKey;
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const byKey = form.elements.method.value === 'key';
    const body = byKey
      ? { access_key: form.elements.access_key.value, secret_key: form.elements.secret_key.value }
      : { user: form.elements.user.value, password: form.elements.password.value };
    try {
      signedIn(await api('POST', '/console/api/session', { body }));
      form.reset();
      document.getElementById('sign-in-error').textContent = '';
    } catch (error) {
      document.getElementById('sign-in-error').textContent = error.message;
    }
  });
  document.getElementById('sign-out').addEventListener('click', async () => {
    if (leave) leave();
    leave = null;
    await api('DELETE', '/console/api/session').catch(() => {});
    setSession(null);
    show(false);
  });
  window.addEventListener('hashchange', route);
  try {
    signedIn(await api('GET', '/console/api/session'));
  } catch (_) {
    show(false);
  }
}

start();
