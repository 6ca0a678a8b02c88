//! Committed-trace subscriptions: after a group commit is fsynced and in the memtable, the writer
//! thread publishes the traces it newly stored (duplicates are not republished) to every
//! [`Store::subscribe`] receiver.
//!
//! Publishing never blocks and never slows ingest: it is a `tokio::sync::broadcast` send of the group the
//! memtable holds, shared, not copied. A receiver that falls more than
//! [`SUBSCRIPTION_CAPACITY`] commit groups behind gets `RecvError::Lagged` and must catch up from the
//! store itself (`cts-notify` re-reads a window of the store by its durable cursor).

use crate::store::Store;
use cts_model::Trace;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The traces one group commit newly stored, in commit order: the memtable and every subscriber share
/// them (a `Vec` behind the `Arc`, so handing the writer's vector over copies nothing).
pub type CommitGroup = Arc<Vec<Trace>>;

/// How many commit groups a subscriber may fall behind before it lags.
pub const SUBSCRIPTION_CAPACITY: usize = 4096;

/// The sending side, held by the store's shared state.
pub(crate) struct Committed {
    sender: broadcast::Sender<CommitGroup>,
}

impl Default for Committed {
    fn default() -> Self {
        Committed { sender: broadcast::channel(SUBSCRIPTION_CAPACITY).0 }
    }
}

impl Committed {
    /// Sends a commit group's new traces to every receiver (a shared handle: nothing is copied).
    pub(crate) fn publish(&self, traces: CommitGroup) {
        // An error only means no one listens.
        let _ = self.sender.send(traces);
    }
}

impl Store {
    /// Every trace stored from now on, in commit order, once it is durable (fsynced) and queryable.
    pub fn subscribe(&self) -> broadcast::Receiver<CommitGroup> {
        self.shared().committed.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::make_trace;
    use crate::{Store, StoreConfig};

    #[test]
    fn subscribers_get_each_newly_stored_trace_once_after_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let mut receiver = store.subscribe();
        let (first, second) = (make_trace(1), make_trace(2));
        store.append_blocking(vec![first.clone(), first.clone()]).unwrap();
        store.append_blocking(vec![first.clone(), second.clone()]).unwrap();
        let published: Vec<_> = [receiver.try_recv().unwrap(), receiver.try_recv().unwrap()]
            .iter()
            .flat_map(|batch| batch.iter().map(|trace| trace.trace_id.clone()))
            .collect();
        assert_eq!(published, [first.trace_id.clone(), second.trace_id.clone()]);
        assert!(receiver.try_recv().is_err(), "a retried trace is not published again");
        let committed = store.get(&second.project_id, &second.trace_id).unwrap();
        assert!(committed.is_some(), "published traces are queryable");
    }
}
