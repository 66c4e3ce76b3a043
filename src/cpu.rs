//! Where CPU-heavy checks of unauthenticated input run: argon2 password hashes and MACs
//! over large webhook bodies.
//!
//! Owns one bounded pool: the work runs on tokio's blocking threads, at most one job per
//! CPU at a time, so a burst of expensive requests waits here (an async wait, holding no
//! worker) instead of stalling the async workers that serve every other connection. It
//! also owns [`Slots`], a non-waiting concurrency cap for endpoints that refuse rather
//! than queue (the sign-in form). Nothing here may wait on I/O or hold a lock across the
//! work it runs.

use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The number of CPUs the process may use (at least 1).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn pool() -> &'static Arc<Semaphore> {
    static POOL: OnceLock<Arc<Semaphore>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(Semaphore::new(cpus())))
}

/// The job panicked; its result is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a CPU-bound job panicked")]
pub struct JobFailed;

/// Run `job` on a blocking thread once one of the [`cpus`] permits is free.
pub async fn run<R, F>(job: F) -> Result<R, JobFailed>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    // The pool's semaphore is never closed.
    let permit = Arc::clone(pool())
        .acquire_owned()
        .await
        .map_err(|_| JobFailed)?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        job()
    })
    .await
    .map_err(|_| JobFailed)
}

/// A cap on concurrent requests of one kind that refuses, rather than queues, the request
/// over it.
#[derive(Debug)]
pub struct Slots(Arc<Semaphore>);

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots(Arc::new(Semaphore::new(n)))
    }

    /// A slot, or `None` when all are taken.
    pub fn try_take(&self) -> Option<Slot> {
        let permit = Arc::clone(&self.0).try_acquire_owned().ok()?;
        Some(Slot { _permit: permit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_refuse_once_all_are_taken_and_free_on_drop() {
        let slots = Slots::new(2);
        let a = slots.try_take().expect("first");
        let _b = slots.try_take().expect("second");
        assert!(slots.try_take().is_none());
        drop(a);
        assert!(slots.try_take().is_some());
    }

    #[tokio::test]
    async fn jobs_run_off_the_async_worker_and_return_their_result() {
        let caller = std::thread::current().id();
        let (ran_on, value) = run(|| (std::thread::current().id(), 41 + 1)).await.unwrap();
        assert_ne!(ran_on, caller);
        assert_eq!(value, 42);
    }

    // Security property: a burst of heavy jobs never runs more than one per CPU at once,
    // so the blocking threads cannot multiply the CPU an attacker gets.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_jobs_run_at_once_than_there_are_cpus() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..cpus() * 4)
            .map(|_| {
                let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
                tokio::spawn(run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    // Busy work long enough for the jobs to overlap if they could.
                    let start = std::time::Instant::now();
                    while start.elapsed() < std::time::Duration::from_millis(20) {
                        std::hint::spin_loop();
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= cpus());
        assert!(peak.load(Ordering::SeqCst) >= 1);
    }
}
