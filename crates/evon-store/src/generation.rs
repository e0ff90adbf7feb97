//! What this process knows of the hub's generation without asking the database.
//!
//! Every committed write moves `hub.generation` on (see `db::write_transaction`). A
//! [`GenerationWatch`] holds the newest generation this process has seen committed: writes made
//! through its [`Store`](crate::Store) advance it before they return, anything that reads the
//! generation may advance it, and a [`GenerationPoller`] advances it for writes made by other
//! processes (the command line, the OpenVPN hooks, other replicas). In-memory state derived from
//! the database (the token cache) is valid only while the watch still shows the generation it
//! was read at.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::error::StoreResult;
use crate::schema::hub;
use crate::Store;

/// The newest generation known to be committed, and when the database last confirmed it.
#[derive(Debug)]
pub struct GenerationWatch {
    newest: AtomicI64,
    /// Milliseconds after `epoch` of the last confirmation plus one; 0 for never.
    confirmed_at: AtomicU64,
    epoch: Instant,
}

impl Default for GenerationWatch {
    fn default() -> Self {
        Self {
            // Below every generation a hub can have, so that the first one seen is newer.
            newest: AtomicI64::new(i64::MIN),
            confirmed_at: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl GenerationWatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The newest generation seen so far (`i64::MIN` before the first).
    pub fn current(&self) -> i64 {
        self.newest.load(Ordering::Acquire)
    }

    /// Records that the database holds at least `generation`, read just now: by a commit that
    /// moved it there, or by a read of `hub.generation`. It never moves backwards, so a slow
    /// reader holding an older snapshot cannot undo a newer commit.
    pub fn advance(&self, generation: i64) {
        self.newest.fetch_max(generation, Ordering::AcqRel);
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.confirmed_at.fetch_max(now + 1, Ordering::AcqRel);
    }

    /// Whether the database confirmed the generation within `max_age`. A cache must not trust a
    /// watch nobody keeps up to date (a poller that stopped or fell far behind): writes by other
    /// processes would then go unseen.
    pub fn confirmed_within(&self, max_age: Duration) -> bool {
        let confirmed = self.confirmed_at.load(Ordering::Acquire);
        if confirmed == 0 {
            return false;
        }
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let max_age = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(confirmed) <= max_age
    }
}

/// The stored generation, `None` before `init` (there is no hub row yet).
pub(crate) fn stored(conn: &mut DbConnection) -> StoreResult<Option<i64>> {
    Ok(hub::table.select(hub::generation).first(conn).optional()?)
}

/// A thread that reads `hub.generation` every `interval` and advances the store's watch, so
/// that writes committed by other processes reach this one's caches within about an interval.
/// It stops (and is joined) when dropped.
#[derive(Debug)]
pub struct GenerationPoller {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl GenerationPoller {
    pub fn spawn(store: Store, interval: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let watch = Arc::clone(store.generation_watch());
        let thread = std::thread::Builder::new()
            .name("evon-generation".into())
            .spawn(move || {
                let mut failing = false;
                loop {
                    match store.read(stored) {
                        Ok(Some(generation)) => {
                            watch.advance(generation);
                            if failing {
                                tracing::info!("hub generation readable again");
                                failing = false;
                            }
                        }
                        Ok(None) => {}
                        Err(error) => {
                            // Once per outage, not every interval. Caches stop trusting the
                            // watch by themselves when it is not confirmed for a while.
                            if !failing {
                                tracing::warn!(%error, "cannot read the hub generation");
                                failing = true;
                            }
                        }
                    }
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for GenerationPoller {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_only_moves_forwards() {
        let watch = GenerationWatch::new();
        assert_eq!(watch.current(), i64::MIN);
        assert!(!watch.confirmed_within(Duration::from_secs(3600)));
        watch.advance(5);
        assert_eq!(watch.current(), 5);
        watch.advance(3);
        assert_eq!(watch.current(), 5);
        watch.advance(7);
        assert_eq!(watch.current(), 7);
        assert!(watch.confirmed_within(Duration::from_secs(3600)));
    }

    #[test]
    fn an_old_confirmation_is_not_trusted() {
        let watch = GenerationWatch::new();
        watch.advance(1);
        std::thread::sleep(Duration::from_millis(30));
        assert!(!watch.confirmed_within(Duration::from_millis(5)));
        watch.advance(1);
        assert!(watch.confirmed_within(Duration::from_secs(3600)));
    }
}
