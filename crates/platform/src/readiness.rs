//! Readiness: whether this replica should take traffic, from the health of what it needs.
//!
//! A service is ready when every [`Check`] registered with its [`Readiness`] passes: each Kafka
//! client says whether a broker answers (and a group consumer whether it joined its group), the
//! Redis check whether a `PING` comes back. A check that fails clears readiness at once, so
//! `/readyz` and `grpc.health.v1.Health` answer NOT_SERVING and Kubernetes stops routing here
//! until the dependency is back; nothing is set once and forgotten.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One condition of readiness (a dependency, a consumer). Cheap to clone; starts failing.
#[derive(Clone, Debug)]
pub struct Check {
    name: Arc<str>,
    ok: Arc<AtomicBool>,
}

impl Check {
    /// A check not yet registered anywhere (a client built outside a service keeps one).
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Check {
            name: name.into(),
            ok: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Records the check's state; a change is logged (once per change, not per call).
    pub fn set(&self, ok: bool) {
        let was = self.ok.swap(ok, Ordering::AcqRel);
        if was != ok {
            if ok {
                tracing::info!(check = %self.name, "ready");
            } else {
                tracing::warn!(check = %self.name, "not ready");
            }
        }
    }

    pub fn get(&self) -> bool {
        self.ok.load(Ordering::Acquire)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Every check of a service; ready when all pass and the service said it is serving.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<Check>>>,
    serving: Check,
}

impl Default for Check {
    fn default() -> Self {
        Check::new("serving")
    }
}

impl Readiness {
    /// Registers a new check (failing until set) and returns it.
    pub fn check(&self, name: impl Into<Arc<str>>) -> Check {
        let check = Check::new(name);
        self.add(check.clone());
        check
    }

    /// Registers an existing check (a client's own).
    pub fn add(&self, check: Check) {
        self.checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(check);
    }

    /// Says the service itself is serving (its listeners run) or no longer (draining).
    pub fn set_serving(&self, serving: bool) {
        self.serving.set(serving);
    }

    /// All checks pass and the service is serving.
    pub fn get(&self) -> bool {
        self.serving.get() && self.failing().is_empty()
    }

    /// The names of the checks that fail now (what `/readyz` prints).
    pub fn failing(&self) -> Vec<String> {
        self.checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|c| !c.get())
            .map(|c| c.name().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_every_check_passes_and_serving() {
        let r = Readiness::default();
        let redis = r.check("redis");
        let kafka = r.check("kafka");
        r.set_serving(true);
        assert!(!r.get(), "checks start failing");
        redis.set(true);
        kafka.set(true);
        assert!(r.get());
        redis.set(false);
        assert!(!r.get(), "a lost dependency clears readiness");
        assert_eq!(r.failing(), vec!["redis".to_owned()]);
        redis.set(true);
        assert!(r.get(), "and it comes back with the dependency");
        r.set_serving(false);
        assert!(!r.get(), "draining is not ready");
    }
}
