//! Work exactly one replica does at a time: the SAMR push and the deadline checks. Each role is
//! a lease from the store ([`Leadership`]); a replica that does not hold it asks again every
//! [`RETRY`], so when the holder dies the work moves to a live replica within about that long.

use crate::store::{LeaderRole, Store};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// How often a replica without the lease asks for it again (the failover bound, plus one round).
pub const RETRY: Duration = Duration::from_secs(2);

/// Runs `round` every `every` while this replica holds `role`'s lease, until `stop` says so.
pub fn spawn<F, Fut>(
    store: Arc<dyn Store>,
    role: LeaderRole,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    round: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            let lease = match store.try_lead(role).await {
                Ok(lease) => lease,
                Err(e) => {
                    warn!(role = role.as_str(), error = %e, "could not ask for the leader lease");
                    None
                }
            };
            if let Some(lease) = lease {
                if store.backend() != "sqlite" {
                    info!(role = role.as_str(), "this replica now leads");
                }
                loop {
                    if !lease.is_held().await {
                        warn!(role = role.as_str(), "leader lease lost");
                        break;
                    }
                    round().await;
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = stop.changed() => return,
            }
        }
    });
}
