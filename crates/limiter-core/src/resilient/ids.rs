//! Record ids that say which store made a reservation (see *Record ids* in
//! [`ResilientStore`](super::ResilientStore)'s docs), so that a settlement
//! goes to that store with no table to keep.

use crate::error::{Error, Result};
use crate::store::RecordId;

/// Set on every id that did not come from the primary.
pub(super) const LOCAL_BIT: u64 = 1 << 63;
/// Set, with [`LOCAL_BIT`], on fail-open ids.
pub(super) const FAIL_OPEN_BIT: u64 = 1 << 62;
/// The bits of a fallback id or of the fail-open counter.
pub(super) const LOCAL_MASK: u64 = FAIL_OPEN_BIT - 1;

/// Which store made a reservation of a [`ResilientStore`](crate::ResilientStore); see
/// [`ResilientStore::origin`](crate::ResilientStore::origin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordOrigin {
    /// The primary store.
    Primary,
    /// The local fallback store, during an outage.
    Fallback,
    /// Nothing: admitted without limits during an outage (fail open).
    FailOpen,
}

/// Which store made the record or lease id `id`.
pub(super) const fn origin(id: u64) -> RecordOrigin {
    if id & LOCAL_BIT == 0 {
        RecordOrigin::Primary
    } else if id & FAIL_OPEN_BIT == 0 {
        RecordOrigin::Fallback
    } else {
        RecordOrigin::FailOpen
    }
}

/// Puts the caller's id back into an `UnknownRecord` from the fallback.
pub(super) fn outer_id(result: Result<()>, record: RecordId) -> Result<()> {
    match result {
        Err(Error::UnknownRecord(_)) => Err(Error::UnknownRecord(record)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilient::ResilientStore;

    #[test]
    fn origins_are_told_apart_by_id() {
        assert_eq!(ResilientStore::origin(RecordId(0)), RecordOrigin::Primary);
        assert_eq!(
            ResilientStore::origin(RecordId(LOCAL_BIT - 1)),
            RecordOrigin::Primary
        );
        assert_eq!(
            ResilientStore::origin(RecordId(LOCAL_BIT | 7)),
            RecordOrigin::Fallback
        );
        assert_eq!(
            ResilientStore::origin(RecordId(LOCAL_BIT | LOCAL_MASK)),
            RecordOrigin::Fallback
        );
        assert_eq!(
            ResilientStore::origin(RecordId(LOCAL_BIT | FAIL_OPEN_BIT)),
            RecordOrigin::FailOpen
        );
        assert_eq!(
            ResilientStore::origin(RecordId(u64::MAX)),
            RecordOrigin::FailOpen
        );
    }
}
