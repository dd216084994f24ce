//! The timer hyper uses for the header-read timeout (what cuts off slow clients), with a
//! resolution of [`TICK`] instead of tokio's millisecond.
//!
//! hyper arms that timeout for every request head it waits for: with tokio's timer, each
//! request allocated a sleep, registered it in tokio's timer wheel and removed it again,
//! 3-4 % of the throughput of `GET /ping` (docs/benchmarks.md). Here a sleep that is
//! waited on takes a slot in a table (a mutex per shard, one shard per thread that uses it
//! most of the time) and gives it back when dropped, and one task scans the table every
//! [`TICK`] and wakes the sleeps whose deadline has passed. A timeout therefore fires up to a
//! [`TICK`] late: fine for a timeout of seconds, not a general-purpose timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often the waiting sleeps are checked.
pub(crate) const TICK: Duration = Duration::from_millis(250);

/// Independent tables; a thread keeps to one, so two workers rarely share a lock.
const SHARDS: usize = 8;

enum Slot {
    Free,
    Waiting { deadline: Instant, waker: Waker },
    Fired,
}

#[derive(Default)]
struct Shard {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

impl Shard {
    fn insert(&mut self, slot: Slot) -> usize {
        match self.free.pop() {
            Some(index) => {
                if let Some(free) = self.slots.get_mut(index) {
                    *free = slot;
                }
                index
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        }
    }
}

/// The table of waiting sleeps, shared by the timer, its sleeps and the ticking task.
#[derive(Default)]
struct Table {
    shards: [Mutex<Shard>; SHARDS],
}

impl Table {
    fn shard(&self, index: usize) -> MutexGuard<'_, Shard> {
        // The slots stay consistent whatever panicked while holding the lock.
        self.shards[index % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the sleeps whose deadline is at or before `now`.
    fn fire(&self, now: Instant) {
        for index in 0..SHARDS {
            let mut due = Vec::new();
            {
                let mut shard = self.shard(index);
                for slot in &mut shard.slots {
                    if matches!(slot, Slot::Waiting { deadline, .. } if *deadline <= now)
                        && let Slot::Waiting { waker, .. } = std::mem::replace(slot, Slot::Fired)
                    {
                        due.push(waker);
                    }
                }
            }
            due.into_iter().for_each(Waker::wake);
        }
    }
}

/// The shard of the current thread.
fn home_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static HOME: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    HOME.with(|home| *home)
}

/// A `hyper::rt::Timer` whose sleeps fire within [`TICK`] after their deadline, while
/// [`CoarseTimer::run`] runs.
#[derive(Clone, Default)]
pub(crate) struct CoarseTimer {
    table: Arc<Table>,
}

impl CoarseTimer {
    /// Checks the sleeps every [`TICK`], for as long as it is polled.
    pub(crate) async fn run(self) {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.table.fire(Instant::now());
        }
    }
}

impl hyper::rt::Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(CoarseSleep {
            deadline,
            table: Arc::clone(&self.table),
            slot: None,
        })
    }
}

struct CoarseSleep {
    deadline: Instant,
    table: Arc<Table>,
    /// Shard and slot, once polled.
    slot: Option<(usize, usize)>,
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match this.slot {
            None => {
                // The first poll comes right after the sleep was made (hyper waits for the
                // head): no need to read the clock, the ticking task will.
                let shard = home_shard();
                let index = this.table.shard(shard).insert(Slot::Waiting {
                    deadline: this.deadline,
                    waker: cx.waker().clone(),
                });
                this.slot = Some((shard, index));
                Poll::Pending
            }
            Some((shard, index)) => {
                let mut table = this.table.shard(shard);
                match table.slots.get_mut(index) {
                    Some(Slot::Waiting { waker, .. }) => {
                        if !waker.will_wake(cx.waker()) {
                            waker.clone_from(cx.waker());
                        }
                        Poll::Pending
                    }
                    _ => Poll::Ready(()),
                }
            }
        }
    }
}

impl hyper::rt::Sleep for CoarseSleep {}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        if let Some((shard, index)) = self.slot {
            let mut table = self.table.shard(shard);
            if let Some(slot) = table.slots.get_mut(index) {
                *slot = Slot::Free;
                table.free.push(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    #[tokio::test]
    async fn sleeps_fire_after_their_deadline_within_a_tick() {
        let timer = CoarseTimer::default();
        let ticking = tokio::spawn(timer.clone().run());
        let started = Instant::now();
        timer.sleep(Duration::from_millis(300)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_millis(300) + TICK * 4, "{waited:?}");
        ticking.abort();
    }

    #[tokio::test]
    async fn dropped_sleeps_give_their_slot_back_and_are_not_woken() {
        let timer = CoarseTimer::default();
        let ticking = tokio::spawn(timer.clone().run());
        for _ in 0..100 {
            let mut sleep = timer.sleep(Duration::from_secs(60));
            let waker = futures_util::task::noop_waker();
            let polled = sleep.as_mut().poll(&mut Context::from_waker(&waker));
            assert!(polled.is_pending());
        }
        let slots: usize = (0..SHARDS).map(|i| timer.table.shard(i).slots.len()).sum();
        let free: usize = (0..SHARDS).map(|i| timer.table.shard(i).free.len()).sum();
        // Each sleep was dropped before the next one took a slot: one slot, reused.
        assert_eq!((slots, free), (1, 1));
        // A sleep still waiting is not fired before its deadline.
        let mut long = timer.sleep(Duration::from_secs(60));
        let waker = futures_util::task::noop_waker();
        assert!(
            long.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        timer.table.fire(Instant::now());
        assert!(
            long.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        timer.table.fire(Instant::now() + Duration::from_secs(61));
        assert!(
            long.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
        );
        ticking.abort();
    }
}
