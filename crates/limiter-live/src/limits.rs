//! The limits of one live model.

use std::time::Duration;

use limiter_core::{DayWindow, Dimension, Error, Limits, Result};
use serde::{Deserialize, Serialize};

/// The limits of one live model: how many sessions may start per window and
/// per day, how many may be open at once, and how many tokens may flow per
/// window while they are open.
///
/// `sessions` holds the request limits (`rps`, `rpm`, `rpd`: a session
/// start counts as one request) and `tokens` the token limits (`tpm`,
/// `tpd`, `input_tpm`, `output_tpm`); each may also set its window, guard
/// band, window kind and day. 0 or absent means off.
///
/// ```
/// use limiter_live::LiveLimits;
///
/// // Gemini Live, free tier: 3 sessions at once, 1,000,000 input tokens per minute.
/// let limits = LiveLimits::new()
///     .concurrent_sessions(3)
///     .sessions_per_minute(10)
///     .sessions_per_day(200)
///     .input_tokens_per_minute(1_000_000);
/// limits.validate().unwrap();
///
/// // The same from a serialised config.
/// let parsed: LiveLimits = serde_json::from_str(
///     r#"{"concurrent_sessions": 3, "sessions": {"rpm": 10, "rpd": 200},
///         "tokens": {"input_tpm": 1000000}}"#,
/// ).unwrap();
/// assert_eq!(parsed, limits);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LiveLimits {
    /// Limits on session starts (request limits only).
    pub sessions: Limits,
    /// Limits on the tokens sessions use (token limits only).
    pub tokens: Limits,
    /// How many sessions may be open at once; `None`: no cap.
    pub concurrent_sessions: Option<u64>,
}

impl Default for LiveLimits {
    fn default() -> Self {
        Self::new()
    }
}

/// The request dimensions, which count session starts.
const SESSION_DIMS: [Dimension; 3] = [Dimension::Rps, Dimension::Rpm, Dimension::Rpd];

impl LiveLimits {
    /// No limit on.
    pub const fn new() -> Self {
        LiveLimits {
            sessions: Limits::new(),
            tokens: Limits::new(),
            concurrent_sessions: None,
        }
    }

    /// Splits a model's limits (as the quota tables give them): the request
    /// limits count session starts, the token limits count the tokens of
    /// open sessions; images per window do not apply and are dropped.
    pub fn from_model(limits: &Limits, concurrent_sessions: Option<u64>) -> Self {
        let mut sessions = *limits;
        (
            sessions.tpm,
            sessions.tpd,
            sessions.input_tpm,
            sessions.output_tpm,
        ) = (0, 0, 0, 0);
        sessions.ipm = 0;
        let mut tokens = *limits;
        (tokens.rps, tokens.rpm, tokens.rpd, tokens.ipm) = (0, 0, 0, 0);
        tokens.smoothing = false;
        LiveLimits {
            sessions,
            tokens,
            concurrent_sessions,
        }
    }

    /// Sets how many sessions may be open at once.
    #[must_use]
    pub const fn concurrent_sessions(mut self, sessions: u64) -> Self {
        self.concurrent_sessions = Some(sessions);
        self
    }

    /// Sets how many sessions may start per second.
    #[must_use]
    pub const fn sessions_per_second(mut self, n: u64) -> Self {
        self.sessions = self.sessions.rps(n);
        self
    }

    /// Sets how many sessions may start per window (a minute by default).
    #[must_use]
    pub const fn sessions_per_minute(mut self, n: u64) -> Self {
        self.sessions = self.sessions.rpm(n);
        self
    }

    /// Sets how many sessions may start per day.
    #[must_use]
    pub const fn sessions_per_day(mut self, n: u64) -> Self {
        self.sessions = self.sessions.rpd(n);
        self
    }

    /// Sets combined tokens per window.
    #[must_use]
    pub const fn tokens_per_minute(mut self, n: u64) -> Self {
        self.tokens = self.tokens.tpm(n);
        self
    }

    /// Sets input tokens per window (Gemini counts input tokens).
    #[must_use]
    pub const fn input_tokens_per_minute(mut self, n: u64) -> Self {
        self.tokens = self.tokens.input_tpm(n);
        self
    }

    /// Sets output tokens per window.
    #[must_use]
    pub const fn output_tokens_per_minute(mut self, n: u64) -> Self {
        self.tokens = self.tokens.output_tpm(n);
        self
    }

    /// Sets combined tokens per day.
    #[must_use]
    pub const fn tokens_per_day(mut self, n: u64) -> Self {
        self.tokens = self.tokens.tpd(n);
        self
    }

    /// Sets the window of both the session and the token limits.
    #[must_use]
    pub const fn window(mut self, window: Duration) -> Self {
        self.sessions = self.sessions.window(window);
        self.tokens = self.tokens.window(window);
        self
    }

    /// Sets the day of both the session and the token limits (Gemini:
    /// midnight Pacific).
    #[must_use]
    pub const fn day(mut self, day: DayWindow) -> Self {
        self.sessions = self.sessions.day(day);
        self.tokens = self.tokens.day(day);
        self
    }

    /// Checks the limits.
    ///
    /// # Errors
    /// The limits' own errors; [`Error::InvalidNumber`] for a cap of 0;
    /// [`Error::InvalidConfig`] for a token limit in `sessions` or a
    /// request or image limit in `tokens`.
    pub fn validate(&self) -> Result<()> {
        self.sessions.validate()?;
        self.tokens.validate()?;
        if self.concurrent_sessions == Some(0) {
            return Err(Error::InvalidNumber {
                field: "concurrent_sessions",
                reason: "0 would admit no session; leave it out for no cap".into(),
            });
        }
        if let Some(cap) = self.concurrent_sessions {
            if cap > limiter_core::MAX_LEASE_CAP {
                return Err(Error::InvalidNumber {
                    field: "concurrent_sessions",
                    reason: format!("{cap} is above {}", limiter_core::MAX_LEASE_CAP),
                });
            }
        }
        for d in Dimension::ALL {
            let in_sessions = SESSION_DIMS.contains(&d);
            if !in_sessions && self.sessions.get(d) != 0 {
                return Err(Error::InvalidConfig {
                    field: format!("sessions.{d}"),
                    reason: "session limits count session starts; put token limits in `tokens`"
                        .into(),
                });
            }
            if (in_sessions || d == Dimension::Ipm) && self.tokens.get(d) != 0 {
                return Err(Error::InvalidConfig {
                    field: format!("tokens.{d}"),
                    reason: "token limits count tokens; put request limits in `sessions`".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_splits_into_session_and_token_limits() {
        let model = Limits::new()
            .rpm(10)
            .rpd(200)
            .input_tpm(1_000_000)
            .ipm(5)
            .smoothing(true)
            .window(Duration::from_secs(30));
        let l = LiveLimits::from_model(&model, Some(3));
        assert_eq!(
            (
                l.sessions.rpm,
                l.sessions.rpd,
                l.sessions.input_tpm,
                l.sessions.ipm
            ),
            (10, 200, 0, 0)
        );
        assert_eq!(
            (l.tokens.rpm, l.tokens.input_tpm, l.tokens.ipm),
            (0, 1_000_000, 0)
        );
        assert!(l.sessions.smoothing && !l.tokens.smoothing);
        assert_eq!(l.tokens.window_ms, 30_000);
        assert_eq!(l.concurrent_sessions, Some(3));
        l.validate().unwrap();
    }

    #[test]
    fn misplaced_limits_and_a_zero_cap_are_refused() {
        let mut l = LiveLimits::new();
        l.sessions.tpm = 5;
        assert!(matches!(l.validate(), Err(Error::InvalidConfig { .. })));
        let mut l = LiveLimits::new();
        l.tokens.rpm = 5;
        assert!(matches!(l.validate(), Err(Error::InvalidConfig { .. })));
        let l = LiveLimits::new().concurrent_sessions(0);
        assert!(matches!(l.validate(), Err(Error::InvalidNumber { .. })));
        let l = LiveLimits::new().sessions_per_minute(limiter_core::MAX_AMOUNT + 1);
        assert!(matches!(l.validate(), Err(Error::InvalidNumber { .. })));
    }
}
