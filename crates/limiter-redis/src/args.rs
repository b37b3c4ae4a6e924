//! The scripts' arguments and replies.

use std::time::Duration;

use limiter_core::{
    Amounts, DayWindow, Decision, Dimension, Error, Limits, Plan, RecordId, Reservation, Result,
    Status, TimeZone, Timestamp, Usage, WindowKind,
};

/// The operations, one script each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Reserve,
    Adjust,
    Refund,
    Status,
    Cooldown,
}

impl Op {
    pub(crate) const ALL: [Op; 5] = [
        Op::Reserve,
        Op::Adjust,
        Op::Refund,
        Op::Status,
        Op::Cooldown,
    ];

    /// The script's Lua source.
    pub(crate) fn source(self) -> &'static str {
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

/// ARGV[2..=22]: the limits as the scripts read them.
pub(crate) fn plan_args(plan: &Plan, out: &mut Vec<String>) {
    let (w, s, d) = plan.spans_us();
    let wl = plan.window_limits();
    let dl = plan.day_limits();
    let (calendar, reset, us_dst, offset) = match plan.day_window() {
        DayWindow::Calendar {
            reset_minutes,
            zone,
        } => {
            let (dst, off) = match zone {
                TimeZone::Fixed { offset_minutes } => (false, offset_minutes),
                TimeZone::UsDaylight {
                    standard_offset_minutes,
                } => (true, standard_offset_minutes),
                _ => (false, 0),
            };
            (true, reset_minutes, dst, off)
        }
        _ => (false, 0, false, 0),
    };
    let day_on = dl != [0, 0];
    let mut keep = plan.retention_us().max(w).max(s);
    if day_on {
        // A calendar day lasts up to 25 hours.
        keep = keep.max(d + 3_600_000_000);
    }
    keep += KEEP_MARGIN_US;
    out.extend([
        plan.window_us().to_string(),
        plan.guard_us().to_string(),
        w.to_string(),
        s.to_string(),
        d.to_string(),
    ]);
    out.extend(wl.iter().map(u64::to_string));
    out.extend([
        plan.rps().to_string(),
        dl[0].to_string(),
        dl[1].to_string(),
        plan.spacing_us().unwrap_or(0).to_string(),
        u8::from(plan.window_kind() == WindowKind::TokenBucket).to_string(),
        u8::from(calendar).to_string(),
        reset.to_string(),
        u8::from(us_dst).to_string(),
        offset.to_string(),
        plan.retention_us().to_string(),
        keep.to_string(),
    ]);
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
        [0, earliest, now] => Ok(Decision::Denied {
            earliest: ts(*earliest),
            now: ts(*now),
        }),
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

pub(crate) fn decode_status(limits: &Limits, reply: &[i64]) -> Result<Status> {
    let [now, depth, tail, cd, used @ ..] = reply else {
        return Err(bad_reply("status", reply));
    };
    if used.len() != Dimension::ALL.len() {
        return Err(bad_reply("status", reply));
    }
    let usage = Dimension::ALL
        .into_iter()
        .zip(used)
        .filter(|(d, _)| limits.effective(*d) > 0)
        .map(|(d, u)| Usage {
            dimension: d,
            used: u64::try_from(*u).unwrap_or(0),
            limit: limits.effective(d),
        })
        .collect();
    Ok(Status {
        now: ts(*now),
        usage,
        queue_depth: u64::try_from(*depth).unwrap_or(0),
        queue_tail: (*tail > 0).then(|| ts(*tail)),
        cooldown_until: (*cd > *now).then(|| ts(*cd)),
    })
}
