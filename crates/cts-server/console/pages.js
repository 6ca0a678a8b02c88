// Trackers, notifications with their topics, and insights: lists and forms over the same API.
import { api, el, field, formatTime, projectPath, smnPath, showJson, errorBox, currentSession } from './api.js';

function table(id, headers, rows) {
  return el('div', { class: 'table-wrap' }, el('table', { id },
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: headers.length, class: 'muted' }, 'None')))));
}

// Runs `action`, then `after`; a failure is shown in `box`.
async function attempt(box, action, after) {
  box.replaceChildren();
  try { await action(); if (after) await after(); } catch (error) { box.replaceChildren(errorBox(error)); }
}

const canChange = () => currentSession().role === 'admin';

export async function trackersPage(root) {
  const message = el('div');
  const list = el('div');
  const form = el('form', { class: 'card', id: 'tracker-form', 'aria-labelledby': 'tracker-form-title' },
    el('h3', { id: 'tracker-form-title' }, 'Create or edit a data tracker'),
    el('div', { class: 'filters' },
      el('div', {}, ...field('tracker_name', 'Tracker name', { required: true })),
      el('div', {}, ...field('data_bucket_name', 'Watched bucket', { required: true })),
      el('div', {}, ...field('bucket_name', 'Transfer to bucket (optional)')),
      el('div', {}, ...field('file_prefix_name', 'File prefix (optional)'))),
    el('fieldset', {}, el('legend', {}, 'Data events'),
      ['READ', 'WRITE'].map((e) => el('label', {}, el('input', { type: 'checkbox', name: 'data_event', value: e, checked: true }), ` ${e}`))),
    el('div', { class: 'actions' }, el('button', { type: 'submit', name: 'create' }, 'Create'),
      el('button', { type: 'button', id: 'tracker-update' }, 'Save changes')));

  function body() {
    const f = form.elements;
    const events = [...form.querySelectorAll('input[name=data_event]:checked')].map((b) => b.value);
    const tracker = { tracker_type: 'data', tracker_name: f.tracker_name.value.trim(),
      data_bucket: { data_bucket_name: f.data_bucket_name.value.trim(), data_event: events } };
    if (f.bucket_name.value.trim()) {
      tracker.obs_info = { bucket_name: f.bucket_name.value.trim(), file_prefix_name: f.file_prefix_name.value.trim() || undefined };
    }
    return tracker;
  }

  async function refresh() {
    try {
      const { trackers } = await api('GET', projectPath('/trackers'));
      list.replaceChildren(table('trackers', ['Name', 'Type', 'Status', 'Detail', 'Transfer to', 'Created', 'Actions'],
        trackers.map((t) => el('tr', {},
          el('td', {}, t.tracker_name), el('td', {}, t.tracker_type),
          el('td', {}, el('span', { class: `rating ${t.status === 'enabled' ? 'normal' : t.status === 'error' ? 'incident' : 'warning'}` }, t.status)),
          el('td', {}, t.detail || ''), el('td', {}, t.obs_info && t.obs_info.bucket_name ? `${t.obs_info.bucket_name}/${t.obs_info.file_prefix_name || ''}` : ''),
          el('td', {}, formatTime(t.create_time)),
          el('td', {},
            el('button', { type: 'button', onclick: () => showJson(`Tracker ${t.tracker_name}`, t) }, 'Details'), ' ',
            canChange() && el('button', { type: 'button', 'aria-label': `${t.status === 'enabled' ? 'Disable' : 'Enable'} ${t.tracker_name}`,
              onclick: () => attempt(message, () => api('PUT', projectPath('/tracker'), { body: {
                tracker_type: t.tracker_type, tracker_name: t.tracker_name, status: t.status === 'enabled' ? 'disabled' : 'enabled' } }), refresh) },
            t.status === 'enabled' ? 'Disable' : 'Enable'), ' ',
            canChange() && t.tracker_type === 'data' && el('button', { type: 'button', 'aria-label': `Edit ${t.tracker_name}`, onclick: () => {
              form.elements.tracker_name.value = t.tracker_name;
              form.elements.data_bucket_name.value = (t.data_bucket && t.data_bucket.data_bucket_name) || '';
              form.elements.bucket_name.value = (t.obs_info && t.obs_info.bucket_name) || '';
              form.elements.file_prefix_name.value = (t.obs_info && t.obs_info.file_prefix_name) || '';
              form.elements.tracker_name.focus();
            } }, 'Edit'))))));
    } catch (error) { list.replaceChildren(errorBox(error)); }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(message, () => api('POST', projectPath('/tracker'), { body: body() }), refresh);
  });
  form.querySelector('#tracker-update').addEventListener('click', () =>
    attempt(message, () => api('PUT', projectPath('/tracker'), { body: body() }), refresh));
  root.append(el('h2', {}, 'Trackers'), message, list, canChange() ? form : el('p', { class: 'muted' }, 'Your role can read trackers only.'));
  await refresh();
  return null;
}

export async function notificationsPage(root) {
  const message = el('div');
  const notifications = el('div');
  const topics = el('div');
  const topicForm = el('form', { class: 'card', id: 'topic-form' }, el('h3', {}, 'Create a topic'),
    ...field('topic_name', 'Topic name', { required: true }), el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Create topic')));
  const notificationForm = el('form', { class: 'card', id: 'notification-form' }, el('h3', {}, 'Create a key event notification'),
    ...field('notification_name', 'Notification name', { required: true }),
    el('label', { for: 'topic_id' }, 'Topic'), el('select', { id: 'topic_id', name: 'topic_id' }),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Create notification')));

  async function refresh() {
    try {
      const answer = await api('GET', projectPath('/notifications/smn'));
      notifications.replaceChildren(table('notifications', ['Name', 'Status', 'Operations', 'Topic', 'Actions'],
        answer.notifications.map((n) => el('tr', {}, el('td', {}, n.notification_name), el('td', {}, n.status),
          el('td', {}, n.operation_type), el('td', {}, n.topic_id || ''),
          el('td', {}, canChange() && el('button', { type: 'button', 'aria-label': `${n.status === 'enabled' ? 'Disable' : 'Enable'} ${n.notification_name}`,
            onclick: () => attempt(message, () => api('PUT', projectPath('/notifications'), { body: {
              notification_id: n.notification_id, notification_name: n.notification_name, operation_type: n.operation_type,
              status: n.status === 'enabled' ? 'disabled' : 'enabled' } }), refresh) }, n.status === 'enabled' ? 'Disable' : 'Enable'))))));
    } catch (error) { notifications.replaceChildren(errorBox(error)); }
    try {
      const answer = await api('GET', smnPath('/topics'));
      topics.replaceChildren(table('topics', ['Name', 'URN'], answer.topics.map((t) => el('tr', {}, el('td', {}, t.name), el('td', {}, t.topic_urn)))));
      notificationForm.elements.topic_id.replaceChildren(el('option', { value: '' }, 'None'),
        answer.topics.map((t) => el('option', { value: t.topic_urn }, t.name)));
    } catch (error) { topics.replaceChildren(errorBox(error)); }
  }

  topicForm.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(message, () => api('POST', smnPath('/topics'), { body: { name: topicForm.elements.topic_name.value.trim() } }), refresh);
  });
  notificationForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { notification_name: notificationForm.elements.notification_name.value.trim(), operation_type: 'complete' };
    if (notificationForm.elements.topic_id.value) body.topic_id = notificationForm.elements.topic_id.value;
    attempt(message, () => api('POST', projectPath('/notifications'), { body }), refresh);
  });
  root.append(el('h2', {}, 'Key event notifications'), message, notifications, el('h3', {}, 'Topics'), topics,
    ...(canChange() ? [notificationForm, topicForm] : []));
  await refresh();
  return null;
}

export async function insightsPage(root) {
  const list = el('div');
  root.append(el('h2', {}, 'Insights'), el('p', { class: 'muted' }, 'Unusual API call and error rates of the last 7 days.'), list);
  try {
    const { insights } = await api('GET', projectPath('/insights'));
    list.replaceChildren(table('insights', ['Time', 'Insight', 'Operation', 'Rating', 'Details'],
      insights.map((t) => el('tr', {}, el('td', {}, formatTime(t.time)), el('td', {}, t.trace_name), el('td', {}, t.resource_name || ''),
        el('td', {}, el('span', { class: `rating ${t.trace_rating}` }, t.trace_rating)),
        el('td', {}, el('button', { type: 'button', onclick: () => showJson(t.trace_name, t) }, 'View'))))));
  } catch (error) { list.replaceChildren(errorBox(error)); }
  return null;
}
