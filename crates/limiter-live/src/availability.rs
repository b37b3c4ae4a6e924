//! Why a live session cannot start, and the state of a live model.

use std::fmt;
use std::time::Duration;

use limiter_core::{Dimension, LeaseStatus, Status, Timestamp};

/// One reason a live session cannot start (now, or within the caller's
/// maximum wait). Its `Display` is a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// The model is paused after the provider pushed back.
    CoolingDown {
        /// How long the pause still lasts.
        remaining: Duration,
    },
    /// The session-start rate (per second or per window) is reached.
    SessionRate {
        /// The limit reached (`Rps` or `Rpm`).
        dimension: Dimension,
        /// Session starts counted in the window.
        used: u64,
        /// The limit.
        limit: u64,
        /// How long a new session would wait for its turn, when known.
        wait: Option<Duration>,
    },
    /// The daily session limit is reached.
    DailySessions {
        /// Sessions started today.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// Every concurrent-session slot is taken.
    ConcurrentFull {
        /// Sessions open.
        open: u64,
        /// The cap.
        cap: u64,
        /// Others waiting for a slot.
        waiting: u64,
    },
    /// A token limit is used up for now.
    TokenRate {
        /// The limit used up.
        dimension: Dimension,
        /// Tokens counted in the window.
        used: u64,
        /// The limit.
        limit: u64,
    },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::CoolingDown { remaining } => {
                write!(f, "cooling down for {} s", remaining.as_secs_f64().ceil())
            }
            Unavailable::SessionRate {
                dimension,
                used,
                limit,
                wait,
            } => {
                write!(
                    f,
                    "session-start rate reached ({used} of {limit} {dimension})"
                )?;
                if let Some(w) = wait {
                    write!(f, "; the next start would wait {:.1} s", w.as_secs_f64())?;
                }
                Ok(())
            }
            Unavailable::DailySessions { used, limit } => {
                write!(f, "daily sessions reached ({used} of {limit} today)")
            }
            Unavailable::ConcurrentFull { open, cap, waiting } => {
                write!(f, "concurrent sessions full ({open} of {cap} open")?;
                if *waiting > 0 {
                    write!(f, ", {waiting} waiting")?;
                }
                f.write_str(")")
            }
            Unavailable::TokenRate {
                dimension,
                used,
                limit,
            } => write!(f, "token rate exhausted ({used} of {limit} {dimension})"),
        }
    }
}

/// The state of one live model in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveStatus {
    /// The model's canonical name.
    pub model: String,
    /// Session starts against the session limits (`None` when none is on).
    pub sessions: Option<Status>,
    /// Concurrent-session leases (`None` when there is no cap).
    pub leases: Option<LeaseStatus>,
    /// The cap on open sessions, if any.
    pub concurrent_cap: Option<u64>,
    /// Tokens against the token limits (`None` when none is on).
    pub tokens: Option<Status>,
    /// The end of a cooldown in force.
    pub cooldown_until: Option<Timestamp>,
    /// The store's time of the snapshot (of its last read).
    pub now: Timestamp,
}

impl LiveStatus {
    /// Sessions open now (0 without a cap: they are not counted).
    pub fn open_sessions(&self) -> u64 {
        self.leases.map_or(0, |l| l.held)
    }

    /// Everything that keeps a new session from starting now.
    pub fn reasons(&self) -> Vec<Unavailable> {
        let mut out = Vec::new();
        if let Some(until) = self.cooldown_until.filter(|u| *u > self.now) {
            out.push(Unavailable::CoolingDown {
                remaining: until.duration_since(self.now),
            });
        }
        if let Some(s) = &self.sessions {
            // Taken counts the waiting reservations too: a limit they fill
            // is as unavailable as one used up.
            for u in &s.usage {
                let taken = u.used.saturating_add(u.queued);
                if taken < u.limit {
                    continue;
                }
                out.push(match u.dimension {
                    Dimension::Rpd => Unavailable::DailySessions {
                        used: taken,
                        limit: u.limit,
                    },
                    dimension => Unavailable::SessionRate {
                        dimension,
                        used: taken,
                        limit: u.limit,
                        wait: None,
                    },
                });
            }
        }
        if let (Some(l), Some(cap)) = (self.leases, self.concurrent_cap) {
            if l.held + l.waiting >= cap {
                out.push(Unavailable::ConcurrentFull {
                    open: l.held,
                    cap,
                    waiting: l.waiting,
                });
            }
        }
        if let Some(t) = &self.tokens {
            for u in t
                .usage
                .iter()
                .filter(|u| u.used.saturating_add(u.queued) >= u.limit)
            {
                out.push(Unavailable::TokenRate {
                    dimension: u.dimension,
                    used: u.used.saturating_add(u.queued),
                    limit: u.limit,
                });
            }
        }
        out
    }
}

/// Whether a live session can start now, and if not why: the answer of
/// [`LiveLimiter::check_availability`](crate::LiveLimiter::check_availability).
///
/// Its `Display` reads `gemini-live: available` or `gemini-live: not
/// available: concurrent sessions full (3 of 3 open)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Availability {
    /// Everything that keeps a session from starting now; empty when one
    /// can.
    pub reasons: Vec<Unavailable>,
    /// The model's state the answer was read from.
    pub status: LiveStatus,
}

impl Availability {
    /// Whether a session can start now.
    pub fn is_allowed(&self) -> bool {
        self.reasons.is_empty()
    }

    /// Why not, as one sentence; `None` when a session can start.
    pub fn reason(&self) -> Option<String> {
        if self.reasons.is_empty() {
            return None;
        }
        let parts: Vec<String> = self.reasons.iter().map(ToString::to_string).collect();
        Some(parts.join("; "))
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            None => write!(f, "{}: available", self.status.model),
            Some(r) => write!(f, "{}: not available: {r}", self.status.model),
        }
    }
}
