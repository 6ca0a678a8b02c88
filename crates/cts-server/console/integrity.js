// Integrity: the latest signed checkpoint of the project's ledger, and one trace verified in the
// browser against its RFC 9162 inclusion proof: the leaf is SHA-256(0x00 ‖ RFC 8785 JSON of the trace
// as ListTraces returns it), nodes SHA-256(0x01 ‖ left ‖ right), computed with WebCrypto.
import { api, el, field, projectPath, errorBox } from './api.js';

// RFC 8785 for what a trace holds (strings, integers, booleans, objects, arrays): keys sorted, no spaces.
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

async function sha256(...parts) {
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) { bytes.set(part, offset); offset += part.length; }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));

// RFC 9162 2.1.3.2: the root an inclusion proof leads to.
export async function rootFromProof(leafHash, index, treeSize, proof) {
  if (index >= treeSize) throw new Error('leaf index beyond the tree');
  let fn = BigInt(index); let sn = BigInt(treeSize - 1); let r = leafHash;
  for (const p of proof) {
    if (sn === 0n) throw new Error('proof longer than the tree');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(Uint8Array.of(1), p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await sha256(Uint8Array.of(1), r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) throw new Error('proof shorter than the tree');
  return r;
}

export async function integrityPage(root) {
  const checkpointBox = el('div', { class: 'card', id: 'checkpoint' }, 'Loading…');
  const result = el('div', { id: 'verify-result', role: 'status' });
  const form = el('form', { class: 'card', id: 'verify-form' }, el('h3', {}, 'Verify a trace'),
    ...field('verify_trace_id', 'Trace ID', { required: true, autocomplete: 'off' }),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Verify in the browser')), result);
  root.append(el('h2', {}, 'Integrity'), checkpointBox, form);

  let checkpoint = null;
  try {
    const note = await api('GET', projectPath('/ledger/checkpoint'), { text: true });
    const [origin, size, rootHash] = note.split('\n');
    checkpoint = { origin, size: Number(size), root: rootHash };
    checkpointBox.replaceChildren(el('h3', {}, 'Latest checkpoint'),
      el('dl', { class: 'kv' }, el('dt', {}, 'Origin'), el('dd', {}, origin), el('dt', {}, 'Tree size'), el('dd', { id: 'tree-size' }, size),
        el('dt', {}, 'Root hash'), el('dd', { id: 'root-hash' }, rootHash)),
      el('details', {}, el('summary', {}, 'Signed note'), el('pre', {}, note)));
  } catch (error) { checkpointBox.replaceChildren(errorBox(error)); }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    result.replaceChildren('Verifying…');
    try {
      if (!checkpoint) throw new Error('no checkpoint to verify against');
      const traceId = form.elements.verify_trace_id.value.trim();
      const { traces } = await api('GET', projectPath('/traces'), { query: { trace_id: traceId } });
      const dataTraces = traces.length ? traces : (await api('GET', projectPath('/traces'), { query: { trace_id: traceId, trace_type: 'data' } })).traces;
      if (!dataTraces.length) throw new Error(`no trace ${traceId}`);
      const proof = await api('GET', projectPath('/ledger/proof/inclusion'), { query: { trace_id: traceId, tree_size: checkpoint.size } });
      const leaf = await sha256(Uint8Array.of(0), new TextEncoder().encode(canonicalJson(dataTraces[0])));
      const computed = toBase64(await rootFromProof(leaf, proof.leaf_index, proof.tree_size, proof.hashes.map(fromBase64)));
      const ok = computed === checkpoint.root;
      result.replaceChildren(el('p', { class: ok ? 'ok' : 'error' },
        ok ? `Verified: leaf ${proof.leaf_index} of ${proof.tree_size} leads to the checkpoint's root.`
          : `Not verified: the proof leads to ${computed}, the checkpoint says ${checkpoint.root}.`));
    } catch (error) { result.replaceChildren(errorBox(error)); }
  });
  return null;
}
