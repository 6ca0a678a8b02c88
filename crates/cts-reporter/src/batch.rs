//! Traces encoded for sending, and the batches they are sent in: at most `max_traces` traces and `max_bytes`
//! of ingest body each, the same for batches sent at once and batches spooled first.

use bytes::Bytes;
use cts_model::TraceInput;

const ENVELOPE_START: &[u8] = b"{\"traces\":[";
const ENVELOPE_END: &[u8] = b"]}";
/// The body bytes of an empty batch.
const ENVELOPE_BYTES: usize = ENVELOPE_START.len() + ENVELOPE_END.len();

/// A trace ready to send: its id (for logs) and its JSON text (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EncodedTrace {
    pub trace_id: String,
    pub json: String,
}

impl EncodedTrace {
    /// Encodes a trace whose id was assigned.
    pub(crate) fn encode(trace: &TraceInput) -> EncodedTrace {
        EncodedTrace {
            trace_id: trace.trace_id.clone().unwrap_or_default(),
            json: serde_json::to_string(trace).expect("a TraceInput serialises to JSON"),
        }
    }

    /// The bytes the trace adds to an ingest body (its JSON and a separating comma).
    fn body_bytes(&self) -> usize {
        self.json.len() + 1
    }
}

/// The ingest body `{"traces":[...]}` of a batch.
pub(crate) fn ingest_body(traces: &[EncodedTrace]) -> Bytes {
    let mut body = Vec::with_capacity(ENVELOPE_BYTES + traces.iter().map(EncodedTrace::body_bytes).sum::<usize>());
    body.extend_from_slice(ENVELOPE_START);
    for (index, trace) in traces.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(trace.json.as_bytes());
    }
    body.extend_from_slice(ENVELOPE_END);
    Bytes::from(body)
}

/// Collects traces into batches.
#[derive(Debug)]
pub(crate) struct Batcher {
    max_traces: usize,
    max_bytes: usize,
    traces: Vec<EncodedTrace>,
    bytes: usize,
}

impl Batcher {
    pub(crate) fn new(max_traces: usize, max_bytes: usize) -> Batcher {
        Batcher { max_traces, max_bytes, traces: Vec::new(), bytes: ENVELOPE_BYTES }
    }

    /// Whether `trace` fits in a batch at all.
    pub(crate) fn admits(&self, trace: &EncodedTrace) -> bool {
        ENVELOPE_BYTES + trace.body_bytes() <= self.max_bytes
    }

    /// Adds an admitted trace; returns the batches this completed (none, or one, or two when the trace did not
    /// fit the forming batch and alone fills the next).
    pub(crate) fn push(&mut self, trace: EncodedTrace) -> Vec<Vec<EncodedTrace>> {
        debug_assert!(self.admits(&trace));
        let mut sealed = Vec::new();
        if self.bytes + trace.body_bytes() > self.max_bytes {
            sealed.push(self.take());
        }
        self.bytes += trace.body_bytes();
        self.traces.push(trace);
        if self.traces.len() >= self.max_traces {
            sealed.push(self.take());
        }
        sealed
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The forming batch (perhaps empty), leaving the batcher empty.
    pub(crate) fn take(&mut self) -> Vec<EncodedTrace> {
        self.bytes = ENVELOPE_BYTES;
        std::mem::take(&mut self.traces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trace(n: usize, padding: usize) -> EncodedTrace {
        EncodedTrace { trace_id: n.to_string(), json: format!("{{\"n\":{n},\"p\":\"{}\"}}", "x".repeat(padding)) }
    }

    #[test]
    fn the_body_is_the_ingest_envelope() {
        let body = ingest_body(&[trace(1, 0), trace(2, 1)]);
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, serde_json::json!({"traces": [{"n": 1, "p": ""}, {"n": 2, "p": "x"}]}));
        assert_eq!(&ingest_body(&[])[..], b"{\"traces\":[]}");
    }

    proptest! {
        /// Batches keep the traces in order, none lost, each within both limits, and each full batch could not
        /// have taken the trace after it.
        #[test]
        fn batches_keep_order_and_limits(
            max_traces in 1usize..6,
            max_bytes in 40usize..200,
            paddings in prop::collection::vec(0usize..120, 0..40),
        ) {
            let mut batcher = Batcher::new(max_traces, max_bytes);
            let mut batches = Vec::new();
            let mut admitted = Vec::new();
            for (n, padding) in paddings.into_iter().enumerate() {
                let trace = trace(n, padding);
                if batcher.admits(&trace) {
                    admitted.push(trace.clone());
                    batches.extend(batcher.push(trace));
                }
            }
            batches.push(batcher.take());
            prop_assert!(batcher.is_empty());
            let flattened: Vec<_> = batches.iter().flatten().cloned().collect();
            prop_assert_eq!(&flattened, &admitted);
            for batch in &batches {
                prop_assert!(batch.len() <= max_traces);
                prop_assert!(ingest_body(batch).len() <= max_bytes);
            }
            for pair in batches.windows(2) {
                let (full, next) = (&pair[0], &pair[1]);
                if let Some(first) = next.first() {
                    let with_next: Vec<_> = full.iter().chain([first]).cloned().collect();
                    let counted = ENVELOPE_BYTES + with_next.iter().map(EncodedTrace::body_bytes).sum::<usize>();
                    prop_assert!(with_next.len() > max_traces || counted > max_bytes);
                }
            }
        }
    }
}
