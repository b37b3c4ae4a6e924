//! Store faults: retry with backoff, then a degradation policy, as a
//! wrapper store ([`ResilientStore`]) over a primary store and an optional
//! local fallback.
//!
//! - `policy`: the [`RetryPolicy`] and the [`Degradation`];
//! - `ids`: record and lease ids that say which store made them
//!   ([`RecordOrigin`]; the scheme is in the docs of [`ResilientStore`]);
//! - `store`: [`ResilientStore`] and its builder.

mod ids;
mod policy;
mod store;

pub use ids::RecordOrigin;
pub use policy::{Degradation, RetryPolicy};
pub use store::{ResilientStore, ResilientStoreBuilder};
