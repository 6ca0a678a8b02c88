// Trackers (with each one's delivery history), key event notifications (create, full edit, delete), topics with
// their subscriptions, and insights: lists and forms over the same API.
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

// A button that shows and hides `panel` (a row or block right after it), calling `load` each time it opens.
function disclosure(label, ariaLabel, panel, load) {
  const button = el('button', { type: 'button', class: 'disclosure', 'aria-expanded': 'false', 'aria-label': ariaLabel }, `▸ ${label}`);
  button.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    button.setAttribute('aria-expanded', String(!panel.hidden));
    button.textContent = `${panel.hidden ? '▸' : '▾'} ${label}`;
    if (!panel.hidden) load();
  });
  return button;
}

const splitList = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);

// The last delivery cycles of a tracker (GET .../trackers/{name}/deliveries), newest first.
async function loadDeliveries(box, tracker) {
  box.replaceChildren(el('p', { class: 'muted', role: 'status' }, 'Loading…'));
  try {
    const { deliveries } = await api('GET', projectPath(`/trackers/${encodeURIComponent(tracker.tracker_name)}/deliveries`), { query: { limit: 50 } });
    box.replaceChildren(el('h4', {}, `Delivery history of ${tracker.tracker_name}`),
      table(`deliveries-${tracker.tracker_name}`, ['Time', 'Outcome', 'Windows', 'Files', 'Traces', 'Error detail'],
        deliveries.map((d) => el('tr', { class: `delivery ${d.outcome}` }, el('td', {}, formatTime(d.time_ms)),
          el('td', {}, el('span', { class: `rating ${d.outcome === 'failed' ? 'incident' : 'normal'}` }, d.outcome)),
          el('td', {}, `${d.windows_delivered}${d.windows_rewritten ? ` (+${d.windows_rewritten} rewritten)` : ''}`),
          el('td', {}, `${d.files_written}${d.files_expired ? ` (${d.files_expired} expired)` : ''}`),
          el('td', {}, d.traces_written + d.traces_streamed),
          el('td', { class: 'error-detail' }, d.error ? `${d.error.detail}: ${d.error.reason}` : '')))),
      el('p', { class: 'muted' }, 'Cycles that delivered or failed; the last 50 of up to 200 kept.'));
  } catch (error) { box.replaceChildren(errorBox(error)); }
}

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
        trackers.flatMap((t) => {
          const historyBox = el('div');
          const history = el('tr', { class: 'detail history', hidden: true }, el('td', { colspan: 7 }, historyBox));
          const row = el('tr', { class: 'tracker', 'data-tracker': t.tracker_name },
            el('td', {}, t.tracker_name), el('td', {}, t.tracker_type),
            el('td', {}, el('span', { class: `rating ${t.status === 'enabled' ? 'normal' : t.status === 'error' ? 'incident' : 'warning'}` }, t.status)),
            el('td', {}, t.detail || ''), el('td', {}, t.obs_info && t.obs_info.bucket_name ? `${t.obs_info.bucket_name}/${t.obs_info.file_prefix_name || ''}` : ''),
            el('td', {}, formatTime(t.create_time)),
            el('td', { class: 'row-actions' },
              el('button', { type: 'button', onclick: () => showJson(`Tracker ${t.tracker_name}`, t) }, 'Details'),
              disclosure('Delivery history', `Delivery history of ${t.tracker_name}`, history, () => loadDeliveries(historyBox, t)),
              canChange() && el('button', { type: 'button', 'aria-label': `${t.status === 'enabled' ? 'Disable' : 'Enable'} ${t.tracker_name}`,
                onclick: () => attempt(message, () => api('PUT', projectPath('/tracker'), { body: {
                  tracker_type: t.tracker_type, tracker_name: t.tracker_name, status: t.status === 'enabled' ? 'disabled' : 'enabled' } }), refresh) },
              t.status === 'enabled' ? 'Disable' : 'Enable'),
              canChange() && t.tracker_type === 'data' && el('button', { type: 'button', 'aria-label': `Edit ${t.tracker_name}`, onclick: () => {
                form.elements.tracker_name.value = t.tracker_name;
                form.elements.data_bucket_name.value = (t.data_bucket && t.data_bucket.data_bucket_name) || '';
                form.elements.bucket_name.value = (t.obs_info && t.obs_info.bucket_name) || '';
                form.elements.file_prefix_name.value = (t.obs_info && t.obs_info.file_prefix_name) || '';
                form.elements.tracker_name.focus();
              } }, 'Edit')));
          return [row, history];
        })));
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

let rowsMade = 0;   // numbers the ids of repeated rows' inputs

// One removable row of a repeated group in a form (operations, user groups): labelled inputs and a Remove button.
function repeatedRow(kind, fields, values = {}) {
  rowsMade += 1;
  const n = rowsMade;
  const row = el('div', { class: `repeated ${kind}` });
  row.append(...fields.map(([name, label, hint]) => el('div', {},
    el('label', { for: `${kind}-${name}-${n}` }, label),
    el('input', { id: `${kind}-${name}-${n}`, 'data-field': name, value: values[name] || '', placeholder: hint || false, autocomplete: 'off' }))),
  el('button', { type: 'button', class: 'remove', 'aria-label': `Remove this ${kind.replace('-', ' ')}`, onclick: () => row.remove() }, 'Remove'));
  return row;
}

const OPERATION_FIELDS = [['service_type', 'Service type'], ['resource_type', 'Resource type'], ['trace_names', 'Trace names', 'createOrder, deleteOrder']];
const USER_FIELDS = [['user_group', 'User group'], ['user_list', 'Users', 'alice, bob']];

function describeOperations(n) {
  if (n.operation_type === 'complete') return 'All operations';
  return n.operations.map((o) => `${o.service_type}/${o.resource_type}: ${o.trace_names.join(', ')}`).join('; ');
}

function describeFilter(filter) {
  if (!filter || !filter.is_support_filter) return 'Off';
  return filter.rule.join(` ${filter.condition} `);
}

export async function notificationsPage(root) {
  const message = el('div');
  const notifications = el('div');
  const topics = el('div');
  let editing = null;   // the notification the form edits; null: the form creates one
  let topicList = [];

  const operationRows = el('div', { class: 'rows' });
  const userRows = el('div', { class: 'rows' });
  const formTitle = el('h3', { id: 'notification-form-title' }, 'Create a key event notification');
  const submit = el('button', { type: 'submit' }, 'Create notification');
  const cancel = el('button', { type: 'button', hidden: true }, 'Cancel editing');
  const statusField = el('div', { hidden: true }, el('label', { for: 'notification_status' }, 'Status'),
    el('select', { id: 'notification_status', name: 'notification_status' }, ['enabled', 'disabled'].map((v) => el('option', { value: v }, v))));
  const operationsBox = el('fieldset', {}, el('legend', {}, 'Operations (customized)'), operationRows,
    el('button', { type: 'button', onclick: () => operationRows.append(repeatedRow('operation', OPERATION_FIELDS)) }, 'Add operation'));
  const notificationForm = el('form', { class: 'card', id: 'notification-form', 'aria-labelledby': 'notification-form-title' }, formTitle,
    el('div', { class: 'filters' },
      el('div', {}, ...field('notification_name', 'Notification name', { required: true, autocomplete: 'off' })),
      el('div', {}, el('label', { for: 'operation_type' }, 'Operations'),
        el('select', { id: 'operation_type', name: 'operation_type' },
          el('option', { value: 'complete' }, 'All operations'), el('option', { value: 'customized' }, 'Only those listed'))),
      el('div', {}, el('label', { for: 'topic_id' }, 'Topic'), el('select', { id: 'topic_id', name: 'topic_id' })),
      statusField),
    operationsBox,
    el('fieldset', {}, el('legend', {}, 'Users to notify about (none: anyone)'), userRows,
      el('button', { type: 'button', onclick: () => userRows.append(repeatedRow('user-group', USER_FIELDS)) }, 'Add user group')),
    el('fieldset', { class: 'stack' }, el('legend', {}, 'Filter'),
      el('label', { for: 'filter_on', class: 'inline' }, el('input', { type: 'checkbox', id: 'filter_on', name: 'filter_on' }), ' Only traces matching the rules'),
      el('label', { for: 'filter_condition' }, 'Combine rules with'),
      el('select', { id: 'filter_condition', name: 'filter_condition' }, el('option', { value: 'AND' }, 'AND (all)'), el('option', { value: 'OR' }, 'OR (any)')),
      el('label', { for: 'filter_rules' }, 'Rules, one per line: field = value or field != value (up to 6)'),
      el('textarea', { id: 'filter_rules', name: 'filter_rules', rows: 3, placeholder: 'code = 403', spellcheck: 'false' }),
      el('p', { class: 'muted' }, 'Fields: api_version, code, trace_rating, trace_type, resource_id, resource_name.')),
    el('div', { class: 'actions' }, submit, cancel));
  const f = notificationForm.elements;
  const showOperations = () => { operationsBox.hidden = f.operation_type.value !== 'customized'; };
  f.operation_type.addEventListener('change', showOperations);
  showOperations();

  function fillTopics(selected) {
    const options = topicList.map((t) => el('option', { value: t.topic_urn }, t.name));
    if (selected && !topicList.some((t) => t.topic_urn === selected)) options.push(el('option', { value: selected }, selected));
    f.topic_id.replaceChildren(el('option', { value: '' }, editing ? 'Unchanged' : 'None'), ...options);
    f.topic_id.value = selected || '';
  }

  function startEditing(n) {
    editing = n;
    formTitle.textContent = `Edit notification ${n.notification_name}`;
    submit.textContent = 'Save changes';
    cancel.hidden = false; statusField.hidden = false;
    f.notification_name.value = n.notification_name;
    f.operation_type.value = n.operation_type;
    f.notification_status.value = n.status;
    fillTopics(n.topic_id);
    operationRows.replaceChildren(...n.operations.map((o) => repeatedRow('operation', OPERATION_FIELDS, { ...o, trace_names: o.trace_names.join(', ') })));
    userRows.replaceChildren(...n.notify_user_list.map((u) => repeatedRow('user-group', USER_FIELDS, { ...u, user_list: u.user_list.join(', ') })));
    f.filter_on.checked = Boolean(n.filter && n.filter.is_support_filter);
    f.filter_condition.value = (n.filter && n.filter.condition) || 'AND';
    f.filter_rules.value = n.filter ? n.filter.rule.join('\n') : '';
    showOperations();
    f.notification_name.focus();
  }

  function stopEditing() {
    editing = null;
    notificationForm.reset();
    formTitle.textContent = 'Create a key event notification';
    submit.textContent = 'Create notification';
    cancel.hidden = true; statusField.hidden = true;
    operationRows.replaceChildren(); userRows.replaceChildren();
    fillTopics('');
    showOperations();
  }

  // The body of CreateNotification / UpdateNotification: every field, so an update replaces them all.
  function notificationBody() {
    const values = (row, name) => row.querySelector(`[data-field=${name}]`).value.trim();
    const operations = [...operationRows.children].map((row) => ({
      service_type: values(row, 'service_type'), resource_type: values(row, 'resource_type'), trace_names: splitList(values(row, 'trace_names')),
    })).filter((o) => o.service_type || o.resource_type || o.trace_names.length);
    const users = [...userRows.children].map((row) => ({ user_group: values(row, 'user_group'), user_list: splitList(values(row, 'user_list')) }))
      .filter((u) => u.user_group || u.user_list.length);
    const body = {
      notification_name: f.notification_name.value.trim(),
      operation_type: f.operation_type.value,
      operations: f.operation_type.value === 'customized' ? operations : [],
      notify_user_list: users,
      filter: { condition: f.filter_condition.value, is_support_filter: f.filter_on.checked,
        rule: f.filter_rules.value.split('\n').map((r) => r.trim()).filter(Boolean) },
    };
    if (f.topic_id.value) body.topic_id = f.topic_id.value;
    if (editing) { body.notification_id = editing.notification_id; body.status = f.notification_status.value; }
    return body;
  }

  async function loadSubscriptions(box, topic, i) {
    box.replaceChildren(el('p', { class: 'muted', role: 'status' }, 'Loading…'));
    const note = el('div', { role: 'status' });
    const reload = () => loadSubscriptions(box, topic, i);
    try {
      const { subscriptions } = await api('GET', smnPath(`/topics/${encodeURIComponent(topic.topic_urn)}/subscriptions`));
      const list = table(`subscriptions-${i}`, ['Protocol', 'Endpoint', 'Remark', 'Actions'], subscriptions.map((s) => el('tr', { class: 'subscription' },
        el('td', {}, s.protocol), el('td', {}, s.endpoint), el('td', {}, s.remark || ''),
        el('td', {}, canChange() && el('button', { type: 'button', 'aria-label': `Delete subscription ${s.endpoint}`,
          onclick: () => attempt(note, () => api('DELETE', smnPath(`/subscriptions/${encodeURIComponent(s.subscription_urn)}`)), reload) }, 'Delete')))));
      const add = canChange() && el('form', { class: 'subscription-form', 'aria-label': `Add a subscription to ${topic.name}` },
        el('div', { class: 'filters' },
          el('div', {}, el('label', { for: `sub-protocol-${i}` }, 'Protocol'),
            el('select', { id: `sub-protocol-${i}`, name: 'protocol' }, ['https', 'http', 'email'].map((p) => el('option', { value: p }, p)))),
          el('div', {}, el('label', { for: `sub-endpoint-${i}` }, 'Endpoint'),
            el('input', { id: `sub-endpoint-${i}`, name: 'endpoint', required: true, autocomplete: 'off', placeholder: 'https://… or an email address' })),
          el('div', {}, el('label', { for: `sub-remark-${i}` }, 'Remark'), el('input', { id: `sub-remark-${i}`, name: 'remark', autocomplete: 'off' }))),
        el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Add subscription')));
      if (add) {
        add.addEventListener('submit', (event) => {
          event.preventDefault();
          const body = { protocol: add.elements.protocol.value, endpoint: add.elements.endpoint.value.trim(), remark: add.elements.remark.value.trim() };
          attempt(note, async () => {
            const answer = await api('POST', smnPath(`/topics/${encodeURIComponent(topic.topic_urn)}/subscriptions`), { body });
            await reload();
            if (answer.signing_secret) {
              box.append(el('p', { class: 'secret' }, 'Webhook signing secret (shown only now): ', el('code', {}, answer.signing_secret)));
            }
          });
        });
      }
      box.replaceChildren(el('h4', {}, `Subscriptions of ${topic.name}`), list, note, add || '');
    } catch (error) { box.replaceChildren(errorBox(error)); }
  }

  async function refresh() {
    try {
      const answer = await api('GET', smnPath('/topics'));
      topicList = answer.topics;
      topics.replaceChildren(table('topics', ['Name', 'URN', 'Actions'], topicList.flatMap((t, i) => {
        const box = el('div');
        const panel = el('tr', { class: 'detail subscriptions', hidden: true }, el('td', { colspan: 3 }, box));
        return [el('tr', { class: 'topic', 'data-topic': t.name }, el('td', {}, t.name), el('td', {}, t.topic_urn),
          el('td', { class: 'row-actions' }, disclosure('Subscriptions', `Subscriptions of ${t.name}`, panel, () => loadSubscriptions(box, t, i)),
            canChange() && el('button', { type: 'button', 'aria-label': `Delete topic ${t.name}`, onclick: () => {
              if (window.confirm(`Delete topic ${t.name} and its subscriptions?`)) {
                attempt(message, () => api('DELETE', smnPath(`/topics/${encodeURIComponent(t.topic_urn)}`)), refresh);
              }
            } }, 'Delete'))), panel];
      })));
      fillTopics(editing ? editing.topic_id : f.topic_id.value);
    } catch (error) { topics.replaceChildren(errorBox(error)); }
    try {
      const answer = await api('GET', projectPath('/notifications/smn'));
      notifications.replaceChildren(table('notifications', ['Name', 'Status', 'Operations', 'Users', 'Filter', 'Topic', 'Actions'],
        answer.notifications.map((n) => el('tr', { 'data-notification': n.notification_name }, el('td', {}, n.notification_name), el('td', {}, n.status),
          el('td', {}, describeOperations(n)),
          el('td', {}, n.notify_user_list.map((u) => `${u.user_group}: ${u.user_list.join(', ')}`).join('; ') || 'Anyone'),
          el('td', { class: 'filter' }, describeFilter(n.filter)), el('td', {}, n.topic_id || ''),
          el('td', { class: 'row-actions' },
            el('button', { type: 'button', onclick: () => showJson(`Notification ${n.notification_name}`, n) }, 'Details'),
            canChange() && el('button', { type: 'button', 'aria-label': `Edit ${n.notification_name}`, onclick: () => startEditing(n) }, 'Edit'),
            canChange() && el('button', { type: 'button', 'aria-label': `${n.status === 'enabled' ? 'Disable' : 'Enable'} ${n.notification_name}`,
              onclick: () => attempt(message, () => api('PUT', projectPath('/notifications'), { body: {
                notification_id: n.notification_id, status: n.status === 'enabled' ? 'disabled' : 'enabled' } }), refresh) },
            n.status === 'enabled' ? 'Disable' : 'Enable'),
            canChange() && el('button', { type: 'button', 'aria-label': `Delete ${n.notification_name}`, onclick: () => {
              if (window.confirm(`Delete notification ${n.notification_name}?`)) {
                attempt(message, () => api('DELETE', projectPath('/notifications'), { query: { notification_id: n.notification_id } }), async () => {
                  if (editing && editing.notification_id === n.notification_id) stopEditing();
                  await refresh();
                });
              }
            } }, 'Delete'))))));
    } catch (error) { notifications.replaceChildren(errorBox(error)); }
  }

  const topicForm = el('form', { class: 'card', id: 'topic-form' }, el('h3', {}, 'Create a topic'),
    ...field('topic_name', 'Topic name', { required: true }), el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Create topic')));
  topicForm.addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(message, () => api('POST', smnPath('/topics'), { body: { name: topicForm.elements.topic_name.value.trim() } }), refresh);
  });
  notificationForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const method = editing ? 'PUT' : 'POST';
    attempt(message, () => api(method, projectPath('/notifications'), { body: notificationBody() }), async () => {
      stopEditing();
      await refresh();
    });
  });
  cancel.addEventListener('click', stopEditing);
  root.append(el('h2', {}, 'Key event notifications'), message, notifications, ...(canChange() ? [notificationForm] : []),
    el('h2', {}, 'Topics'), topics, ...(canChange() ? [topicForm] : []));
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
