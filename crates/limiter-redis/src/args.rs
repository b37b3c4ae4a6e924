//! The scripts' arguments and replies.

use std::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::contract::{self, argv};
use limiter_core::{
    Amounts, DayWindow, Decision, Dimension, Error, ExternalUsage, Lease, LeaseDecision, LeaseId,
    LeaseStatus, Limits, NotUntil, Plan, RecordId, Reservation, Result, Status, TimeZone,
    Timestamp, Usage, WindowKind,
};

/// The operations, one script each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Reserve,
    Adjust,
    Refund,
    Status,
    Cooldown,
    /// Concurrency leases: acquire, renew, release and status.
    Lease,
    /// External usage: the provider's count beyond the key's own.
    External,
    /// The key's limits of record: get or set.
    Record,
}

impl Op {
    pub(crate) const ALL: [Op; 8] = [
        Op::Reserve,
        Op::Adjust,
        Op::Refund,
        Op::Status,
        Op::Cooldown,
        Op::Lease,
        Op::External,
        Op::Record,
    ];

    /// The script's Lua source as the server runs it: the file's, with the
    /// contract's names replaced by their numbers ([`contract::expand`]).
    pub(crate) fn source(self) -> &'static str {
        static SOURCES: OnceLock<[String; 8]> = OnceLock::new();
        &SOURCES.get_or_init(|| Op::ALL.map(|op| contract::expand(op.file_source())))[self as usize]
    }

    /// The script's Lua source as in `src/lua/`.
    fn file_source(self) -> &'static str {
        match self {
            Op::Reserve => concat!(
                include_str!("lua/common.lua"),
                include_str!("lua/reserve.lua")
            ),
            Op::Adjust => concat!(
                include_str!("lua/common.lua"),
                include_str!("lua/adjust.lua")
            ),
            Op::Refund => concat!(
                include_str!("lua/common.lua"),
                include_str!("lua/refund.lua")
            ),
            Op::Status => concat!(
                include_str!("lua/common.lua"),
                include_str!("lua/status.lua")
            ),
            Op::Cooldown => include_str!("lua/cooldown.lua"),
            Op::Lease => include_str!("lua/lease.lua"),
            Op::External => concat!(
                include_str!("lua/common.lua"),
                include_str!("lua/external.lua")
            ),
            Op::Record => include_str!("lua/record.lua"),
        }
    }
}

/// Extra time a key's state is kept past its last reservation beyond what
/// its windows need, so that clock differences never drop live state.
const KEEP_MARGIN_US: u64 = 60_000_000;

/// `now` for ARGV[1]: the manual clock's, or "" for the server's TIME.
pub(crate) fn now_arg(now: Option<Timestamp>) -> String {
    now.map_or_else(String::new, |t| t.as_micros().to_string())
}

/// Refuses a "now" of a manual clock past the horizon, as the state
/// machines do (the server's own time is taken as it is).
pub(crate) fn check_now(now: Option<Timestamp>) -> Result<()> {
    match now {
        Some(t) if t > Timestamp::HORIZON => Err(Error::now_beyond_horizon(t)),
        _ => Ok(()),
    }
}

/// `now` for ARGV[1] of the lease script, checked.
pub(crate) fn lease_now_arg(now: Option<Timestamp>) -> Result<String> {
    check_now(now)?;
    Ok(now_arg(now))
}

/// A lease's time to live in µs (checked before: at most a day).
pub(crate) fn ttl_arg(ttl: Duration) -> String {
    ttl.as_micros().to_string()
}

/// `ARGV[NOW ..OP]` of the admission scripts: "now" and the limits as the
/// scripts read them, each at its place in [`argv`]; the operation's own
/// arguments are pushed after.
pub(crate) fn admission_args(now: Option<Timestamp>, plan: &Plan) -> Vec<String> {
    let (w, s, d) = plan.spans_us();
    let wl = plan.window_limits();
    let dl = plan.day_limits();
    let (calendar, reset, zone) = match plan.day_window() {
        DayWindow::Calendar {
            reset_minutes,
            zone,
        } => (true, reset_minutes, zone_arg(zone, now)),
        _ => (false, 0, Arc::from("0")),
    };
    let day_on = dl != [0, 0];
    let mut keep = plan.retention_us().max(w).max(s);
    if day_on {
        // A calendar day lasts up to 25 hours.
        keep = keep.max(d + 3_600_000_000);
    }
    keep += KEEP_MARGIN_US;
    // Room for the operation's own arguments too (at most six).
    let mut args = Vec::with_capacity(argv::OP + 6);
    args.resize(argv::OP - 1, String::new());
    let mut put = |at: usize, v: String| args[at - 1] = v;
    put(argv::NOW, now_arg(now));
    put(argv::WINDOW, plan.window_us().to_string());
    put(argv::GUARD, plan.guard_us().to_string());
    put(argv::SPAN_W, w.to_string());
    put(argv::SPAN_S, s.to_string());
    put(argv::SPAN_D, d.to_string());
    for (i, l) in wl.iter().enumerate() {
        put(argv::WL + i, l.to_string());
    }
    put(argv::RPS, plan.rps().to_string());
    for (i, l) in dl.iter().enumerate() {
        put(argv::DL + i, l.to_string());
    }
    put(argv::SPACING, plan.spacing_us().unwrap_or(0).to_string());
    put(
        argv::BUCKET,
        u8::from(plan.window_kind() == WindowKind::TokenBucket).to_string(),
    );
    put(argv::CALENDAR, u8::from(calendar).to_string());
    put(argv::RESET, reset.to_string());
    put(argv::ZONE, zone.to_string());
    put(argv::RETENTION, plan.retention_us().to_string());
    put(argv::KEEP, keep.to_string());
    args
}

/// How far back the zone's offsets given to the scripts reach from the
/// day of "now": a day earlier still than yesterday, for a server clock
/// behind.
const ZONE_BEFORE_DAYS: i64 = 2;
/// How far ahead they reach: slots further ahead (a queue more than a
/// year long) are counted with the last offset given.
pub(crate) const ZONE_AHEAD_DAYS: i64 = 400;

/// [`argv::ZONE`] for `zone` around `now` (this machine's clock when the
/// server's is used: the scripts pick the day by the server's time within
/// what they are given). Made once a day per zone.
fn zone_arg(zone: TimeZone, now: Option<Timestamp>) -> Arc<str> {
    const DAY: i64 = 86_400_000_000;
    let now = now.unwrap_or_else(Timestamp::now_system).as_micros() as i64;
    let day = now.div_euclid(DAY);
    /// Per zone: the day it was made on, and the argument.
    type Made = HashMap<TimeZone, (i64, Arc<str>)>;
    static CACHE: OnceLock<Mutex<Made>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some((d, arg)) = cache.lock().get(&zone) {
        if *d == day {
            return arg.clone();
        }
    }
    let (first, changes) = zone.offset_changes(
        (day - ZONE_BEFORE_DAYS) * DAY,
        (day + ZONE_AHEAD_DAYS) * DAY,
    );
    let mut arg = first.to_string();
    for (at, offset) in changes {
        arg.push_str(&format!(",{at},{offset}"));
    }
    let arg: Arc<str> = Arc::from(arg);
    cache.lock().insert(zone, (day, arg.clone()));
    arg
}

pub(crate) fn amounts_args(a: &Amounts, out: &mut Vec<String>) {
    out.extend(a.get().iter().map(u64::to_string));
}

pub(crate) fn max_wait_arg(max_wait: Option<Duration>) -> String {
    match max_wait {
        None => "-1".into(),
        Some(d) => u64::try_from(d.as_micros())
            .unwrap_or(u64::MAX)
            .min(1 << 53)
            .to_string(),
    }
}

fn bad_reply(op: &str, reply: &[i64]) -> Error {
    Error::store(
        format!("unexpected reply from the {op} script: {reply:?}"),
        false,
    )
}

fn ts(v: i64) -> Timestamp {
    Timestamp::from_micros(u64::try_from(v).unwrap_or(0))
}

pub(crate) fn decode_reserve(reply: &[i64]) -> Result<Decision> {
    match reply {
        [1, slot, now, id, position] => Ok(Decision::Reserved(Reservation {
            record: RecordId(u64::try_from(*id).map_err(|_| bad_reply("reserve", reply))?),
            slot: ts(*slot),
            now: ts(*now),
            position: u64::try_from(*position).unwrap_or(0),
        })),
        [0, earliest, now] => Ok(Decision::Denied(NotUntil {
            earliest: ts(*earliest),
            now: ts(*now),
        })),
        [-2, slot] => Err(Error::slot_beyond_horizon(ts(*slot))),
        _ => Err(bad_reply("reserve", reply)),
    }
}

/// Adjust and refund: `{1}` done, `{-1}` unknown record.
pub(crate) fn decode_done(op: &str, record: RecordId, reply: &[i64]) -> Result<()> {
    match reply {
        [1] => Ok(()),
        [-1] => Err(Error::UnknownRecord(record)),
        _ => Err(bad_reply(op, reply)),
    }
}

/// The per-window dimensions in the scripts' order.
const PER_WINDOW: [Dimension; 5] = [
    Dimension::Rpm,
    Dimension::Tpm,
    Dimension::InputTpm,
    Dimension::OutputTpm,
    Dimension::Ipm,
];

/// Per-window amounts from a reply, the non-zero ones by dimension.
fn per_window(amounts: &[i64]) -> Vec<(Dimension, u64)> {
    PER_WINDOW
        .iter()
        .zip(amounts)
        .filter(|(_, &v)| v > 0)
        .map(|(&d, &v)| (d, v as u64))
        .collect()
}

/// External usage: `{a1..a5}`.
pub(crate) fn decode_external(reply: &[i64]) -> Result<Vec<(Dimension, u64)>> {
    if reply.len() != PER_WINDOW.len() {
        return Err(bad_reply("external", reply));
    }
    Ok(per_window(reply))
}

/// ARGV of the external-usage script after the limits.
pub(crate) fn external_args(usage: &ExternalUsage, out: &mut Vec<String>) {
    out.push(
        usage
            .at
            .map_or_else(String::new, |t| t.as_micros().to_string()),
    );
    for v in usage.per_window() {
        out.push(v.map_or_else(|| "-1".to_string(), |v| v.min(1 << 52).to_string()));
    }
    let reset = u64::try_from(usage.reset.as_micros()).unwrap_or(u64::MAX);
    out.push(reset.min(1 << 52).to_string());
}

pub(crate) fn decode_status(limits: &Limits, reply: &[i64]) -> Result<Status> {
    let [now, depth, tail, cd, rest @ ..] = reply else {
        return Err(bad_reply("status", reply));
    };
    let n = Dimension::ALL.len();
    if rest.len() != n + 1 + PER_WINDOW.len() + n {
        return Err(bad_reply("status", reply));
    }
    let (used, rest) = rest.split_at(n);
    let (ext_until, rest) = (rest[0], &rest[1..]);
    let (ext, queued) = rest.split_at(PER_WINDOW.len());
    let held = ext_until > *now;
    let usage = Dimension::ALL
        .into_iter()
        .zip(used.iter().zip(queued))
        .filter(|(d, _)| limits.effective(*d) > 0)
        .map(|(d, (u, q))| Usage {
            dimension: d,
            used: u64::try_from(*u).unwrap_or(0),
            queued: u64::try_from(*q).unwrap_or(0),
            limit: limits.effective(d),
        })
        .collect();
    Ok(Status {
        now: ts(*now),
        usage,
        queue_depth: u64::try_from(*depth).unwrap_or(0),
        queue_tail: (*tail > 0).then(|| ts(*tail)),
        cooldown_until: (*cd > *now).then(|| ts(*cd)),
        external: if held { per_window(ext) } else { Vec::new() },
        external_until: held.then(|| ts(ext_until)),
        calibrated: Vec::new(),
        configured_differs: false,
    })
}

fn id(op: &str, v: i64, reply: &[i64]) -> Result<LeaseId> {
    match u64::try_from(v) {
        Ok(v) if v > 0 => Ok(LeaseId(v)),
        _ => Err(bad_reply(op, reply)),
    }
}

/// A deadline, 0 for none.
fn deadline(v: i64) -> Option<Timestamp> {
    (v > 0).then(|| ts(v))
}

/// Lease acquire: `{1, id, expires, now}` or
/// `{0, ticket (0: none), ahead, held, next expiry (0: none), now}`.
pub(crate) fn decode_lease_acquire(reply: &[i64]) -> Result<LeaseDecision> {
    const OP: &str = "lease acquire";
    match *reply {
        [1, lease, expires, now] => Ok(LeaseDecision::Granted(Lease {
            id: id(OP, lease, reply)?,
            expires: ts(expires),
            now: ts(now),
        })),
        [0, ticket, ahead, held, next, now] if ahead >= 0 && held >= 0 => Ok(LeaseDecision::Full {
            ticket: match ticket {
                0 => None,
                t => Some(id(OP, t, reply)?),
            },
            ahead: ahead as u64,
            held: held as u64,
            next_expiry: deadline(next),
            now: ts(now),
        }),
        _ => Err(bad_reply(OP, reply)),
    }
}

/// Lease renew: `{expires}`, or `{0}` when not held.
pub(crate) fn decode_lease_renew(reply: &[i64]) -> Result<Option<Timestamp>> {
    match *reply {
        [t] if t >= 0 => Ok(deadline(t)),
        _ => Err(bad_reply("lease renew", reply)),
    }
}

/// Lease release: `{1}` held, `{0}` not.
pub(crate) fn decode_lease_release(reply: &[i64]) -> Result<bool> {
    match *reply {
        [1] => Ok(true),
        [0] => Ok(false),
        _ => Err(bad_reply("lease release", reply)),
    }
}

/// Lease status: `{held, waiting, next expiry (0: none), now}`.
pub(crate) fn decode_lease_status(reply: &[i64]) -> Result<LeaseStatus> {
    match *reply {
        [held, waiting, next, now] if held >= 0 && waiting >= 0 => Ok(LeaseStatus {
            held: held as u64,
            waiting: waiting as u64,
            next_expiry: deadline(next),
            now: ts(now),
        }),
        _ => Err(bad_reply("lease status", reply)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_replies_decode() {
        assert_eq!(
            decode_lease_acquire(&[1, 7, 30, 10]).unwrap(),
            LeaseDecision::Granted(Lease {
                id: LeaseId(7),
                expires: ts(30),
                now: ts(10),
            })
        );
        assert_eq!(
            decode_lease_acquire(&[0, 0, 2, 3, 0, 10]).unwrap(),
            LeaseDecision::Full {
                ticket: None,
                ahead: 2,
                held: 3,
                next_expiry: None,
                now: ts(10),
            }
        );
        assert_eq!(
            decode_lease_acquire(&[0, 9, 0, 1, 20, 10]).unwrap(),
            LeaseDecision::Full {
                ticket: Some(LeaseId(9)),
                ahead: 0,
                held: 1,
                next_expiry: Some(ts(20)),
                now: ts(10),
            }
        );
        assert!(decode_lease_acquire(&[1, 0, 30, 10]).is_err());
        assert!(decode_lease_acquire(&[0, 1, -1, 1, 20, 10]).is_err());
        assert!(decode_lease_acquire(&[2]).is_err());
        assert_eq!(decode_lease_renew(&[0]).unwrap(), None);
        assert_eq!(decode_lease_renew(&[5]).unwrap(), Some(ts(5)));
        assert!(decode_lease_renew(&[]).is_err());
        assert!(decode_lease_release(&[1]).unwrap());
        assert!(!decode_lease_release(&[0]).unwrap());
        assert!(decode_lease_release(&[2]).is_err());
        assert_eq!(
            decode_lease_status(&[1, 2, 0, 4]).unwrap(),
            LeaseStatus {
                held: 1,
                waiting: 2,
                next_expiry: None,
                now: ts(4),
            }
        );
        assert!(decode_lease_status(&[1, 2, 0]).is_err());
    }

    #[test]
    fn lease_arguments() {
        assert_eq!(ttl_arg(Duration::from_millis(1500)), "1500000");
        assert_eq!(lease_now_arg(None).unwrap(), "");
        assert_eq!(
            lease_now_arg(Some(Timestamp::from_micros(42))).unwrap(),
            "42"
        );
        assert!(matches!(
            lease_now_arg(Some(Timestamp::from_micros(u64::MAX))),
            Err(Error::InvalidNumber { field: "now", .. })
        ));
    }
}
