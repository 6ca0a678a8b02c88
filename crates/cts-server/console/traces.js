// The traces page: time range, every ListTraces filter, stable paging by marker, columns with a
// chooser, expandable rows, the trace's JSON, a timeline of traces per bucket by rating, a live
// tail over server-sent events, and exports of the current filter.
import { api, el, formatTime, projectPath, queryString, showJson, errorBox } from './api.js';

// Text fields: `q` is free text over request, response and message; a value ending in `*` is a prefix.
const FILTERS = [
  ['q', 'Text in request, response or message'], ['trace_name', 'Trace name'], ['user', 'User'], ['service_type', 'Trace source'],
  ['resource_type', 'Resource type'], ['resource_id', 'Resource ID'], ['resource_name', 'Resource name'],
  ['tracker_name', 'Tracker name'], ['access_key_id', 'Access key ID'],
  ['enterprise_project_id', 'Enterprise project ID'], ['trace_id', 'Trace ID'],
];
const PLACEHOLDERS = { q: 'words or "a phrase"', tracker_name: 'exact', trace_id: 'exact' };
const COLUMNS = [
  ['trace_name', 'Trace name', (t) => t.trace_name],
  ['resource_type', 'Resource type', (t) => t.resource_type],
  ['service_type', 'Trace source', (t) => t.service_type],
  ['resource_id', 'Resource ID', (t) => t.resource_id],
  ['resource_name', 'Resource name', (t) => t.resource_name],
  ['trace_rating', 'Rating', (t) => el('span', { class: `rating ${t.trace_rating}` }, t.trace_rating)],
  ['user', 'Operator', (t) => t.user && t.user.name],
  ['time', 'Time', (t) => formatTime(t.time)],
  ['source_ip', 'Source IP', (t) => t.source_ip],
  ['code', 'Code', (t) => t.code],
];
const RANGES = [['1h', 'Last hour', 3600e3], ['1d', 'Last day', 86400e3], ['7d', 'Last week', 7 * 86400e3], ['custom', 'Custom']];
const visible = new Set(['trace_name', 'resource_type', 'service_type', 'resource_id', 'resource_name', 'trace_rating', 'user', 'time']);

export async function tracesPage(root) {
  const form = el('form', { class: 'card', id: 'trace-filters', 'aria-label': 'Trace filters' });
  const rangeSelect = el('select', { id: 'range', name: 'range' }, RANGES.map(([v, l]) => el('option', { value: v }, l)));
  const custom = el('div', { class: 'filters', hidden: true },
    el('div', {}, el('label', { for: 'from' }, 'From (UTC)'), el('input', { id: 'from', type: 'datetime-local', step: 1 })),
    el('div', {}, el('label', { for: 'to' }, 'To (UTC)'), el('input', { id: 'to', type: 'datetime-local', step: 1 })));
  const grid = el('div', { class: 'filters' },
    el('div', {}, el('label', { for: 'range' }, 'Time range'), rangeSelect),
    el('div', {}, el('label', { for: 'trace_type' }, 'Trace type'),
      el('select', { id: 'trace_type', name: 'trace_type' }, el('option', { value: 'system' }, 'Management'), el('option', { value: 'data' }, 'Data'))),
    el('div', {}, el('label', { for: 'trace_rating' }, 'Rating'),
      el('select', { id: 'trace_rating', name: 'trace_rating' }, ['', 'normal', 'warning', 'incident'].map((r) => el('option', { value: r }, r || 'Any')))),
    FILTERS.map(([name, label]) => el('div', {}, el('label', { for: `filter-${name}` }, label),
      el('input', { id: `filter-${name}`, name, autocomplete: 'off', placeholder: PLACEHOLDERS[name] ?? 'exact, or prefix*' }))),
    el('div', {}, el('label', { for: 'ignore_case' }, el('input', { type: 'checkbox', id: 'ignore_case', name: 'ignore_case' }), ' Ignore case')));
  const exports = ['csv', 'json', 'parquet'].map((format) =>
    el('a', { class: 'button', id: `export-${format}`, href: '#', download: `cts-traces.${format}` }, `Export ${format.toUpperCase()}`));
  const tail = el('input', { type: 'checkbox', id: 'tail' });
  form.append(grid, custom, el('div', { class: 'actions' },
    el('button', { type: 'submit' }, 'Search'), el('button', { type: 'reset' }, 'Reset'), ...exports,
    el('label', { for: 'tail' }, tail, ' Live tail'), el('span', { id: 'tail-status', class: 'muted', role: 'status' })));
  rangeSelect.addEventListener('change', () => { custom.hidden = rangeSelect.value !== 'custom'; });

  const chart = el('div', { class: 'card chart', id: 'timeline' });
  const chooser = el('details', { class: 'columns' }, el('summary', {}, 'Columns'),
    COLUMNS.map(([key, label]) => {
      const box = el('input', { type: 'checkbox', id: `col-${key}`, checked: visible.has(key), 'aria-label': `Show column ${label}` });
      box.addEventListener('change', () => { if (box.checked) visible.add(key); else visible.delete(key); render(); });
      return el('label', { for: `col-${key}` }, box, ` ${label}`);
    }));
  const status = el('span', { class: 'muted', id: 'page-status', role: 'status' });
  const previous = el('button', { type: 'button', id: 'previous-page' }, 'Previous page');
  const next = el('button', { type: 'button', id: 'next-page' }, 'Next page');
  const table = el('table', { id: 'traces' });
  const message = el('div');
  root.append(el('h2', {}, 'Traces'), form, chart,
    el('div', { class: 'actions' }, chooser, previous, next, status), message, el('div', { class: 'table-wrap' }, table));

  let traces = [];
  let markers = [null];   // markers[i]: the `next` of page i (null for the first page)
  let page = 0;
  let nextMarker = null;
  let source = null;
  const fresh = new Set();   // ids of traces the tail brought

  function params() {
    const values = { trace_type: form.elements.trace_type.value, trace_rating: form.elements.trace_rating.value };
    for (const [name] of FILTERS) values[name] = form.elements[name].value.trim();
    values.ignore_case = form.elements.ignore_case.checked ? 'true' : '';
    const now = Date.now();
    const range = RANGES.find(([v]) => v === rangeSelect.value);
    if (range[2]) { values.from = now - range[2]; values.to = now; } else {
      const from = Date.parse(`${form.querySelector('#from').value}Z`);
      const to = Date.parse(`${form.querySelector('#to').value}Z`);
      if (!Number.isNaN(from)) values.from = from;
      if (!Number.isNaN(to)) values.to = to;
    }
    return values;
  }

  function render() {
    const shown = COLUMNS.filter(([key]) => visible.has(key));
    const head = el('tr', {}, el('th', { scope: 'col' }, el('span', { class: 'muted' }, 'Details')),
      shown.map(([, label]) => el('th', { scope: 'col' }, label)));
    const rows = traces.flatMap((trace) => {
      const detail = el('tr', { class: 'detail', hidden: true }, el('td', { colspan: shown.length + 1 },
        el('dl', { class: 'kv' }, ['trace_id', 'trace_type', 'source_ip', 'code', 'request_id', 'tracker_name', 'message']
          .filter((k) => trace[k] !== undefined).flatMap((k) => [el('dt', {}, k), el('dd', {}, String(trace[k]))])),
        el('button', { type: 'button', class: 'view-trace', onclick: () => showJson(`Trace ${trace.trace_id}`, trace) }, 'View trace')));
      const toggle = el('button', { type: 'button', class: 'expand', 'aria-expanded': 'false', 'aria-label': `Expand ${trace.trace_name}` }, '▸');
      toggle.addEventListener('click', () => {
        detail.hidden = !detail.hidden;
        toggle.setAttribute('aria-expanded', String(!detail.hidden));
        toggle.textContent = detail.hidden ? '▸' : '▾';
      });
      const row = el('tr', { class: fresh.has(trace.trace_id) ? 'trace new' : 'trace', 'data-trace-id': trace.trace_id },
        el('td', {}, toggle), shown.map(([key, , get]) => el('td', { class: `col-${key}` }, get(trace) ?? '')));
      return [row, detail];
    });
    table.replaceChildren(el('thead', {}, head), el('tbody', {}, rows));
    status.textContent = `Page ${page + 1}: ${traces.length} traces${nextMarker ? ', more follow' : ''}`;
    previous.disabled = page === 0;
    next.disabled = !nextMarker;
  }

  async function load() {
    message.replaceChildren();
    try {
      const answer = await api('GET', projectPath('/traces'), { query: { ...params(), limit: 50, next: markers[page] } });
      traces = answer.traces;
      nextMarker = answer.meta_data.marker;
      render();
    } catch (error) { message.replaceChildren(errorBox(error)); }
  }

  async function drawChart() {
    try {
      const h = await api('GET', projectPath('/traces/histogram'), { query: params() });
      const max = Math.max(1, ...h.buckets.map((b) => b.normal + b.warning + b.incident));
      const width = 1000; const height = 120; const barWidth = width / Math.max(1, h.buckets.length);
      const ns = 'http://www.w3.org/2000/svg';
      const svg = document.createElementNS(ns, 'svg');
      svg.setAttribute('viewBox', `0 0 ${width} ${height + 14}`);
      svg.setAttribute('preserveAspectRatio', 'none');
      svg.setAttribute('role', 'img');
      const total = h.buckets.reduce((sum, b) => sum + b.normal + b.warning + b.incident, 0);
      svg.setAttribute('aria-label', `${total} traces, ${h.bucket_ms / 60000} minute(s) per bar`);
      h.buckets.forEach((bucket, i) => {
        let y = height;
        for (const rating of ['normal', 'warning', 'incident']) {
          const barHeight = (bucket[rating] / max) * height;
          if (!barHeight) continue;
          y -= barHeight;
          const rect = document.createElementNS(ns, 'rect');
          for (const [k, v] of Object.entries({ x: i * barWidth, y, width: Math.max(barWidth - 0.5, 0.5), height: barHeight, class: rating })) rect.setAttribute(k, v);
          const title = document.createElementNS(ns, 'title');
          title.textContent = `${formatTime(bucket.time)}: ${bucket[rating]} ${rating}`;
          rect.append(title);
          svg.append(rect);
        }
      });
      for (const [x, ms, anchor] of [[0, h.from, 'start'], [width, h.to, 'end']]) {
        const label = document.createElementNS(ns, 'text');
        for (const [k, v] of Object.entries({ x, y: height + 12, class: 'axis', 'text-anchor': anchor })) label.setAttribute(k, v);
        label.textContent = formatTime(ms);
        svg.append(label);
      }
      chart.replaceChildren(el('div', { class: 'legend' }, el('strong', {}, 'Traces per ', h.bucket_ms / 60000, ' min '),
        ['normal', 'warning', 'incident'].map((r) => el('span', {}, el('span', { class: `rating ${r}` }, r)))), svg);
    } catch (error) { chart.replaceChildren(errorBox(error)); }
  }

  function updateExports() {
    const query = params();
    for (const format of ['csv', 'json', 'parquet']) {
      form.querySelector(`#export-${format}`).href = projectPath('/traces/export') + queryString({ ...query, format });
    }
  }

  function stopTail() {
    if (source) { source.close(); source = null; }
    form.querySelector('#tail-status').textContent = '';
  }

  function startTail() {
    stopTail();
    const { from, to, ...filters } = params();
    source = new EventSource(projectPath('/traces/tail') + queryString(filters));
    source.addEventListener('open', () => { form.querySelector('#tail-status').textContent = 'Tailing…'; });
    source.addEventListener('trace', (event) => {
      const trace = JSON.parse(event.data);
      fresh.add(trace.trace_id);
      if (page === 0) { traces = [trace, ...traces]; render(); }
    });
    source.addEventListener('lagged', () => load());
    source.addEventListener('error', () => { form.querySelector('#tail-status').textContent = 'Tail reconnecting…'; });
  }

  function search() {
    markers = [null]; page = 0;
    updateExports();
    load();
    drawChart();
    if (tail.checked) startTail();
  }

  form.addEventListener('submit', (event) => { event.preventDefault(); search(); });
  form.addEventListener('reset', () => setTimeout(search));
  tail.addEventListener('change', () => (tail.checked ? startTail() : stopTail()));
  next.addEventListener('click', () => { if (nextMarker) { markers[page + 1] = nextMarker; page += 1; load(); } });
  previous.addEventListener('click', () => { if (page > 0) { page -= 1; load(); } });
  search();
  return stopTail;
}
