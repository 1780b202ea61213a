//! Failure injection: per node and per route, what the next matching requests do instead.

use std::time::Duration;

use crate::route::Route;

/// What an injected failure does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with a short text body; the request has no effect.
    Status(u16),
    /// Handle the request normally after this delay (to trigger client timeouts).
    Delay(Duration),
    /// Do not answer until [`crate::fake::FakeNode::release`] is called for the route; the request
    /// is then handled normally (even if the client gave up meanwhile, as a real server would).
    Hang,
    /// Accept the request, but its long-running part (bootstrap of a start, LEAVING of a
    /// decommission, a job) does not finish until released: a v1 job stays WAITING, a v0 call
    /// does not answer.
    Stall,
}

/// How many requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// The next request only.
    Once,
    /// The next `n` requests.
    Next(u32),
    /// Every request until cleared.
    Always,
}

#[derive(Debug, Clone)]
struct Injection {
    route: Route,
    fault: Fault,
    remaining: Option<u32>,
}

/// The faults of one node, matched in injection order.
#[derive(Debug, Clone, Default)]
pub(crate) struct FaultTable {
    injections: Vec<Injection>,
}

impl FaultTable {
    /// Adds a fault for the next requests of `route`.
    pub(crate) fn inject(&mut self, route: Route, fault: Fault, times: Times) {
        let remaining = match times {
            Times::Once => Some(1),
            Times::Next(count) => Some(count),
            Times::Always => None,
        };
        if remaining != Some(0) {
            self.injections.push(Injection {
                route,
                fault,
                remaining,
            });
        }
    }

    /// Consumes and returns the fault for one request of `route`, if any.
    pub(crate) fn take(&mut self, route: Route) -> Option<Fault> {
        let index = self.injections.iter().position(|i| i.route == route)?;
        let injection = &mut self.injections[index];
        let fault = injection.fault;
        if let Some(remaining) = injection.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                self.injections.remove(index);
            }
        }
        Some(fault)
    }

    /// Removes every fault.
    pub(crate) fn clear(&mut self) {
        self.injections.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_and_keeps_order() {
        let mut table = FaultTable::default();
        table.inject(Route::LifecycleStart, Fault::Status(500), Times::Next(2));
        table.inject(Route::LifecycleStart, Fault::Hang, Times::Once);
        table.inject(Route::Drain, Fault::Status(503), Times::Always);
        assert_eq!(table.take(Route::LifecycleStart), Some(Fault::Status(500)));
        assert_eq!(table.take(Route::LifecycleStart), Some(Fault::Status(500)));
        assert_eq!(table.take(Route::LifecycleStart), Some(Fault::Hang));
        assert_eq!(table.take(Route::LifecycleStart), None);
        for _ in 0..5 {
            assert_eq!(table.take(Route::Drain), Some(Fault::Status(503)));
        }
        assert_eq!(table.take(Route::Endpoints), None);
        table.clear();
        assert_eq!(table.take(Route::Drain), None);
    }

    #[test]
    fn zero_times_is_nothing() {
        let mut table = FaultTable::default();
        table.inject(Route::Drain, Fault::Hang, Times::Next(0));
        assert_eq!(table.take(Route::Drain), None);
    }
}
