//! One reader per tab: an asynchronous lock per tab id that every read of a tab's tree
//! (whole, partial or a directory by parts) holds from its first call to its write-back.
//!
//! Sessions of the worker share one [`super::PageCache`]; without this, two sessions on one
//! tab would read it at once, the later one would find no kept tree (the earlier one holds
//! it) and name the page afresh, and whichever finished last would write its tree back,
//! stale or not. Waiters are served in the order they came (a session never starves behind
//! a busy one), and a waiter whose command is cancelled or runs out of time simply drops
//! its wait and leaves the queue.
//!
//! It owns the queue and nothing else: no browser, no clock (how long a wait may last is
//! the command's deadline, raced around the whole command).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The locks of all tabs. Cheap to clone: clones share the locks.
#[derive(Debug, Clone, Default)]
pub struct TabGates {
    tabs: Rc<RefCell<HashMap<i64, Gate>>>,
}

#[derive(Debug, Default)]
struct Gate {
    held: bool,
    /// Tickets of the waiters, first come first, with the waker of each one's last poll.
    waiting: VecDeque<(u64, Waker)>,
    next_ticket: u64,
}

impl TabGates {
    /// Wait for `tab`'s lock; it is held until the returned guard is dropped.
    pub fn lock(&self, tab: i64) -> GateWait {
        GateWait {
            gates: self.clone(),
            tab,
            ticket: None,
            done: false,
        }
    }

    /// Whether a read of `tab` holds its lock now.
    pub fn is_held(&self, tab: i64) -> bool {
        self.tabs.borrow().get(&tab).is_some_and(|g| g.held)
    }

    /// Sessions waiting for `tab`'s lock.
    #[cfg(test)]
    pub fn waiting(&self, tab: i64) -> usize {
        self.tabs.borrow().get(&tab).map_or(0, |g| g.waiting.len())
    }

    /// Wake the first waiter of `gate`, if the lock is free (it takes it on its next poll).
    fn wake_first(gate: &Gate) {
        if !gate.held {
            if let Some((_, waker)) = gate.waiting.front() {
                waker.wake_by_ref();
            }
        }
    }

    fn release(&self, tab: i64) {
        let mut tabs = self.tabs.borrow_mut();
        let Some(gate) = tabs.get_mut(&tab) else {
            return;
        };
        gate.held = false;
        if gate.waiting.is_empty() {
            tabs.remove(&tab);
        } else {
            TabGates::wake_first(gate);
        }
    }
}

/// The wait for a tab's lock ([`TabGates::lock`]).
#[derive(Debug)]
pub struct GateWait {
    gates: TabGates,
    tab: i64,
    /// Our place in the queue, once we had to wait.
    ticket: Option<u64>,
    done: bool,
}

impl Future for GateWait {
    type Output = GateGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<GateGuard> {
        let this = &mut *self;
        let mut tabs = this.gates.tabs.borrow_mut();
        let gate = tabs.entry(this.tab).or_default();
        let first = gate.waiting.front().map(|(t, _)| *t);
        let ours = match this.ticket {
            // Newcomers queue behind anyone already waiting, even when the lock is free
            // for a moment (the first waiter was woken and takes it on its next poll).
            None => gate.waiting.is_empty(),
            Some(ticket) => first == Some(ticket),
        };
        if !gate.held && ours {
            if this.ticket.is_some() {
                gate.waiting.pop_front();
            }
            gate.held = true;
            this.done = true;
            return Poll::Ready(GateGuard {
                gates: this.gates.clone(),
                tab: this.tab,
            });
        }
        match this.ticket {
            None => {
                let ticket = gate.next_ticket;
                gate.next_ticket += 1;
                gate.waiting.push_back((ticket, cx.waker().clone()));
                this.ticket = Some(ticket);
            }
            Some(ticket) => {
                if let Some(slot) = gate.waiting.iter_mut().find(|(t, _)| *t == ticket) {
                    slot.1 = cx.waker().clone();
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for GateWait {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Some(ticket) = self.ticket else {
            return;
        };
        // A command cancelled or out of time while waiting: leave the queue, and pass a
        // wake-up it may have been given on to the next waiter.
        let mut tabs = self.gates.tabs.borrow_mut();
        let Some(gate) = tabs.get_mut(&self.tab) else {
            return;
        };
        gate.waiting.retain(|(t, _)| *t != ticket);
        if gate.waiting.is_empty() && !gate.held {
            tabs.remove(&self.tab);
        } else {
            TabGates::wake_first(gate);
        }
    }
}

/// A tab's lock, held until dropped.
#[derive(Debug)]
pub struct GateGuard {
    gates: TabGates,
    tab: i64,
}

impl Drop for GateGuard {
    fn drop(&mut self) {
        self.gates.release(self.tab);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    fn poll(wait: &mut GateWait, waker: &Waker) -> Option<GateGuard> {
        match Pin::new(wait).poll(&mut Context::from_waker(waker)) {
            Poll::Ready(guard) => Some(guard),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_free_tab_is_locked_at_once_and_freed_when_the_guard_drops() {
        let gates = TabGates::default();
        let (_, w) = waker();
        let guard = poll(&mut gates.lock(7), &w).expect("free lock");
        assert!(gates.is_held(7));
        assert!(!gates.is_held(8), "tabs have their own locks");
        assert!(poll(&mut gates.lock(8), &w).is_some());
        drop(guard);
        assert!(!gates.is_held(7));
        assert!(gates.tabs.borrow().is_empty(), "nothing is left behind");
    }

    #[test]
    fn waiters_are_woken_and_served_in_the_order_they_came() {
        let gates = TabGates::default();
        let (_, w0) = waker();
        let first = poll(&mut gates.lock(1), &w0).expect("free lock");
        let (count_a, wa) = waker();
        let (count_b, wb) = waker();
        let mut a = gates.lock(1);
        let mut b = gates.lock(1);
        assert!(poll(&mut a, &wa).is_none());
        assert!(poll(&mut b, &wb).is_none());
        assert_eq!(gates.waiting(1), 2);
        drop(first);
        assert_eq!(
            count_a.0.load(Ordering::SeqCst),
            1,
            "the first waiter is woken"
        );
        assert_eq!(
            count_b.0.load(Ordering::SeqCst),
            0,
            "the second keeps waiting"
        );
        // The second cannot overtake the first, even polled first.
        assert!(poll(&mut b, &wb).is_none());
        let guard_a = poll(&mut a, &wa).expect("the first waiter's turn");
        // A newcomer queues behind b.
        let mut late = gates.lock(1);
        assert!(poll(&mut late, &wa).is_none());
        drop(guard_a);
        assert_eq!(count_b.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut late, &wa).is_none(), "b came before the newcomer");
        let guard_b = poll(&mut b, &wb).expect("b's turn");
        drop(guard_b);
        assert!(poll(&mut late, &wa).is_some());
    }

    #[test]
    fn a_waiter_that_gives_up_leaves_the_queue_and_passes_its_turn_on() {
        let gates = TabGates::default();
        let (_, w) = waker();
        let held = poll(&mut gates.lock(3), &w).expect("free lock");
        let (_, wa) = waker();
        let (count_b, wb) = waker();
        let mut a = gates.lock(3);
        let mut b = gates.lock(3);
        assert!(poll(&mut a, &wa).is_none());
        assert!(poll(&mut b, &wb).is_none());
        drop(held);
        // a was woken but its command was cancelled before it ran again.
        drop(a);
        assert_eq!(
            count_b.0.load(Ordering::SeqCst),
            1,
            "b is woken in a's place"
        );
        let guard = poll(&mut b, &wb).expect("b's turn");
        drop(guard);
        assert!(gates.tabs.borrow().is_empty());
    }

    #[test]
    fn a_wait_never_polled_costs_nothing() {
        let gates = TabGates::default();
        drop(gates.lock(5));
        assert!(gates.tabs.borrow().is_empty());
    }
}
