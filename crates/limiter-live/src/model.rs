//! A live model as a [`LiveLimiter`](crate::LiveLimiter) resolved it,
//! shared by the limiter and its sessions.

use limiter_core::Limiter;

use crate::limits::LiveLimits;

/// One live model as resolved: its key, limits and limiters.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) name: String,
    pub(crate) key: String,
    pub(crate) limits: LiveLimits,
    pub(crate) sessions: Option<Limiter>,
    pub(crate) tokens: Option<Limiter>,
}
