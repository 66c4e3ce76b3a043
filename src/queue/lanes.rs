//! Work queued per key and sent in groups (a group commit): while a key has work, one task
//! sends its groups one after the other, and what arrives while a group is out goes
//! together in the next one.
//!
//! The queue groups its enqueues per hash slot with it ([`super::group`]).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Items waiting, per key. A key present here has a task sending its groups.
pub struct Lanes<K, T> {
    waiting: Mutex<HashMap<K, Vec<T>>>,
}

impl<K: Hash + Eq + Clone, T> Default for Lanes<K, T> {
    fn default() -> Self {
        Lanes {
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, T> Lanes<K, T> {
    fn waiting(&self) -> MutexGuard<'_, HashMap<K, Vec<T>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `item` on `key`'s lane. True when the lane was idle: the caller then starts
    /// the task that sends its groups ([`Lanes::drain`]).
    pub fn push(&self, key: &K, item: T) -> bool {
        let mut lanes = self.waiting();
        match lanes.get_mut(key) {
            Some(lane) => {
                lane.push(item);
                false
            }
            None => {
                lanes.insert(key.clone(), vec![item]);
                true
            }
        }
    }

    /// Send `key`'s groups one after the other until its lane is empty. `size` says how
    /// many of the waiting items the next group takes (at least one); `send` sends a group.
    pub async fn drain<F, Fut>(&self, key: K, mut size: impl FnMut(&[T]) -> usize, mut send: F)
    where
        F: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut end = LaneEnd {
            lanes: self,
            key: &key,
            finished: false,
        };
        loop {
            let group: Vec<T> = {
                let mut lanes = self.waiting();
                let lane = match lanes.get_mut(&key) {
                    Some(lane) if !lane.is_empty() => lane,
                    _ => {
                        lanes.remove(&key);
                        end.finished = true;
                        return;
                    }
                };
                let take = size(lane).clamp(1, lane.len());
                lane.drain(..take).collect()
            };
            send(group).await;
        }
    }
}

/// Removes its key's lane unless the task sending it finished (it panicked, or it was
/// dropped with its runtime), so that later work starts a new task rather than waiting on
/// a vanished one. The items still waiting are dropped with it.
struct LaneEnd<'a, K: Hash + Eq + Clone, T> {
    lanes: &'a Lanes<K, T>,
    key: &'a K,
    finished: bool,
}

impl<K: Hash + Eq + Clone, T> Drop for LaneEnd<'_, K, T> {
    fn drop(&mut self) {
        if !self.finished {
            self.lanes.waiting().remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_arrives_while_a_group_is_out_goes_in_the_next_one() {
        let lanes: Lanes<&str, u32> = Lanes::default();
        assert!(lanes.push(&"a", 1), "an idle lane asks for a task");
        assert!(!lanes.push(&"a", 2), "a busy lane does not");
        assert!(lanes.push(&"b", 9), "lanes are per key");
        let mut sent = Vec::new();
        lanes
            .drain(
                "a",
                |_| 10,
                |group| {
                    if group == [1, 2] {
                        assert!(!lanes.push(&"a", 3));
                        assert!(!lanes.push(&"a", 4));
                        assert!(!lanes.push(&"a", 5));
                    }
                    sent.push(group);
                    async {}
                },
            )
            .await;
        assert_eq!(sent, [vec![1, 2], vec![3, 4, 5]]);
        assert!(lanes.push(&"a", 6), "a drained lane is idle again");
        assert!(!lanes.push(&"b", 10));
    }

    #[tokio::test]
    async fn a_group_takes_what_size_says_and_at_least_one() {
        let lanes: Lanes<u8, u32> = Lanes::default();
        for i in 0..5 {
            lanes.push(&0, i);
        }
        let mut sent = Vec::new();
        lanes
            .drain(
                0,
                |w| if w[0] == 0 { 2 } else { 0 },
                |g| {
                    sent.push(g);
                    async {}
                },
            )
            .await;
        assert_eq!(sent, [vec![0, 1], vec![2], vec![3], vec![4]]);
    }

    #[test]
    fn a_lane_whose_task_vanished_is_idle_again() {
        let lanes: Lanes<u8, u32> = Lanes::default();
        lanes.push(&0, 1);
        lanes.push(&0, 2);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        // The task is dropped while its first group is out.
        let drained = lanes.drain(0, |_| 1, |_| std::future::pending::<()>());
        runtime.block_on(async {
            tokio::select! {
                biased;
                () = drained => unreachable!("the group never ends"),
                () = std::future::ready(()) => {}
            }
        });
        assert!(lanes.push(&0, 3), "the next item starts a new task");
    }
}
