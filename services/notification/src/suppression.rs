//! Why a device in an alert's audience was not alerted.
//!
//! The reasons are shared by the per-device filter ([`crate::preferences`]), the ledger (a
//! suppressed device's entry is `s|<reason>`, written by the claim script in
//! [`crate::store`]), the fan-out (receipts with `outcome = SUPPRESSED` carry the reason as
//! their `detail`) and the metrics (`newsroom_notification_suppressed_total{reason}`). Their
//! spellings are the keys of `AlertStatus.suppressed`, so they live here, in a module that
//! depends on nothing else in the crate.

/// Why a device was held back from an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suppression {
    /// Breaking alerts switched off.
    OptedOut,
    /// The story is in a language the reader did not choose.
    Language,
    /// Now is inside the device's quiet hours, in its own time zone.
    QuietHours,
    /// The device had its maximum alerts today (decided in Redis, with the day's count).
    Budget,
    /// The device's channel is not configured on this server.
    ChannelUnavailable,
    /// The device was already alerted for this news event (the story's near-duplicate
    /// cluster) by another story at the same or a higher urgency (decided in Redis, with the
    /// event's ledger).
    SameEvent,
    /// The alert's window (`expires_after`) closed before the device's turn: not sent late.
    Expired,
}

impl Suppression {
    /// Every reason, in the order the metrics declare them.
    pub const ALL: [Suppression; 7] = [
        Suppression::OptedOut,
        Suppression::Language,
        Suppression::QuietHours,
        Suppression::Budget,
        Suppression::ChannelUnavailable,
        Suppression::SameEvent,
        Suppression::Expired,
    ];

    /// The reason as stored in the ledger and counted in `AlertStatus.suppressed`, metric
    /// labels and receipts.
    pub const fn as_str(self) -> &'static str {
        match self {
            Suppression::OptedOut => "opted_out",
            Suppression::Language => "language",
            Suppression::QuietHours => "quiet_hours",
            Suppression::Budget => "budget",
            Suppression::ChannelUnavailable => "channel_unavailable",
            Suppression::SameEvent => "same_event",
            Suppression::Expired => "expired",
        }
    }

    /// The reason spelled `s`, as [`Suppression::as_str`] writes it.
    pub fn parse(s: &str) -> Option<Suppression> {
        Suppression::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Suppression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_from_its_spelling_and_nothing_else_does() {
        for r in Suppression::ALL {
            assert_eq!(Suppression::parse(r.as_str()), Some(r));
        }
        assert_eq!(Suppression::QuietHours.as_str(), "quiet_hours");
        assert_eq!(Suppression::parse("quiet hours"), None);
        assert_eq!(Suppression::parse(""), None);
    }
}
