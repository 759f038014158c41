//! Delivery channels. A channel is one file implementing [`Channel`]; the fan-out picks the
//! channel by the device's `Channel` value.
//!
//! - [`webhook`] — a JSON POST to the device's URL.

pub mod webhook;

use std::future::Future;

use newsroom_proto::v1::{Alert, Device};

/// What happened to one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The provider accepted the alert.
    Delivered,
    /// It did not, after the channel's retries.
    Failed(String),
    /// The provider says the device no longer exists (HTTP 404/410): unregister it.
    Gone(String),
}

/// A way to reach a device.
pub trait Channel: Send + Sync + 'static {
    fn send(&self, device: &Device, alert: &Alert) -> impl Future<Output = SendOutcome> + Send;
}
