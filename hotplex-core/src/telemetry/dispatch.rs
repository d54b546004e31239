//! Delivery of records to a host callback off the hot path: a bounded
//! queue and one thread of its own. A full queue drops the record and
//! counts it; a callback that panics loses that record only. The thread
//! ends when the last sender is gone (the engine dropped), after delivering
//! what was queued.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

/// How many records wait for a slow callback before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 1024;

/// Sends records of type `T` to a callback on its own thread.
pub(crate) struct Dispatcher<T> {
    tx: Option<SyncSender<T>>,
    dropped: Arc<dyn Fn() + Send + Sync>,
}

impl<T: Send + 'static> Dispatcher<T> {
    /// A dispatcher that delivers nothing.
    pub(crate) fn off() -> Dispatcher<T> {
        Dispatcher {
            tx: None,
            dropped: Arc::new(|| {}),
        }
    }

    /// Starts the thread `name` calling `sink` for each record; `dropped`
    /// is called for each record the full queue refused.
    pub(crate) fn spawn(
        name: &str,
        sink: Arc<dyn Fn(&T) + Send + Sync>,
        dropped: Arc<dyn Fn() + Send + Sync>,
    ) -> Dispatcher<T> {
        let (tx, rx) = sync_channel::<T>(QUEUE_CAPACITY);
        let started = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for record in rx {
                    let _ = catch_unwind(AssertUnwindSafe(|| sink(&record)));
                }
            });
        match started {
            Ok(_) => Dispatcher {
                tx: Some(tx),
                dropped,
            },
            // No thread: every record counts as dropped.
            Err(_) => Dispatcher { tx: None, dropped },
        }
    }

    /// Whether records are wanted (build them only then).
    pub(crate) fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues a record without waiting.
    pub(crate) fn send(&self, record: T) {
        match &self.tx {
            Some(tx) => {
                if let Err(TrySendError::Full(_)) = tx.try_send(record) {
                    (self.dropped)();
                }
            }
            None => (self.dropped)(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn a_slow_sink_drops_and_counts_instead_of_blocking() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d2 = dropped.clone();
        let seen = Arc::new(AtomicUsize::new(0));
        let s2 = seen.clone();
        let d = Dispatcher::spawn(
            "test-dispatch",
            Arc::new(move |_: &u32| {
                std::thread::sleep(Duration::from_millis(100));
                s2.fetch_add(1, Ordering::SeqCst);
            }),
            Arc::new(move || {
                d2.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let n = QUEUE_CAPACITY as u32 + 200;
        for i in 0..n {
            d.send(i);
        }
        // Sending never waited for the sink: most records were refused.
        assert!(dropped.load(Ordering::SeqCst) >= 190);
        let off: Dispatcher<u32> = Dispatcher::off();
        assert!(!off.is_on());
    }
}
