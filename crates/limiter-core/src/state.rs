//! The FIFO admission algorithm as a deterministic state machine.
//!
//! [`KeyState`] holds everything one key needs; every operation takes the
//! current time as an argument and does no I/O, so every store runs the same
//! logic (the in-memory store under a lock, the Redis store as a port of it
//! in Lua, checked against it by a differential test).

// Several parallel arrays indexed by dimension read better as index loops.
#![allow(clippy::needless_range_loop)]
//!
//! # How a slot is chosen
//!
//! A request arriving at `now` gets the earliest instant `s` such that
//!
//! - `s ≥ now`, `s ≥` the slot of every reservation still waiting (FIFO),
//!   and `s ≥` the end of a cooldown;
//! - with smoothing, `s ≥` the previous slot plus the spacing;
//! - each rolling window (the per-window limits, requests per second and a
//!   rolling day) admits it: the amounts of the reservations that still
//!   count at `s`, plus the request's, are within every limit;
//! - each token bucket (one per per-window limit in token-bucket mode) holds
//!   enough (GCRA);
//! - the calendar day of `s` has room for it.
//!
//! Every condition, once true, stays true as `s` grows, so the earliest slot
//! is the largest of the earliest instants of each condition.
//!
//! # Rolling windows in buckets
//!
//! A rolling window is kept as a ring of time buckets of width
//! `g = (window + guard) / BUCKETS` with running totals, so that the work
//! per call does not depend on how many reservations are in the window. A
//! reservation with its slot in a bucket is counted as if it were made at the
//! bucket's end, so it stops counting at most `g` later than it would exactly.
//! The error is therefore conservative (never over-admits) and bounded: a
//! request waits at most `g` longer than an exact log would make it wait,
//! which costs at most `1 / BUCKETS` of the window's capacity.
//!
//! # The guard band
//!
//! A reservation counts for `window + guard`, so that requests whose arrival
//! at the provider is late by up to `guard` (late wake-up, network delay)
//! never make one provider window hold more than the limit.
//!
//! # Bounds that keep it exact everywhere
//!
//! The Redis scripts compute in doubles, which hold integers exactly up to
//! 2^53; the bounds below keep every number both sides compute under that,
//! so that they agree for every valid input:
//!
//! - instants (now, slots, token buckets' arrival times, cooldown ends) stay
//!   at or before [`Timestamp::HORIZON`] (2^52 µs, in 2112); a reservation
//!   whose slot would be later is refused;
//! - amounts are at most [`MAX_AMOUNT`](crate::MAX_AMOUNT) (2^50) each, and
//!   counts saturate at [`SATURATED`] (2^52);
//! - `amount × window / limit` (a token bucket's emission) and the usage a
//!   bucket reports are products of up to 87 bits: computed in 128 bits here
//!   and by long multiplication in the scripts, capped at the horizon.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::calendar;
use crate::error::{Error, Result};
use crate::limits::{
    Amounts, Cost, DayWindow, Dimension, Limits, Plan, WindowKind, DIMS, REQ, TOK,
};
use crate::store::{Decision, NotUntil, RecordId, Reservation, Status, Usage};
use crate::time::Timestamp;

/// How many buckets a rolling window (plus its guard band) is divided into.
pub const BUCKETS: u64 = 128;

/// How long a reservation can still be adjusted or refunded after its slot,
/// at least: the longer of this and the window plus the guard band.
pub const RECORD_RETENTION: Duration = Duration::from_secs(15 * 60);

/// The latest instant the state machine handles, as "now", as a slot, as a
/// token bucket's arrival time and as a cooldown's end:
/// [`Timestamp::HORIZON`].
const HORIZON: u64 = Timestamp::HORIZON.as_micros();

/// Where counts stop growing: 2^52, four times [`MAX_AMOUNT`]. A window
/// bucket, a window's total or a day's count that reaches it holds more than
/// any limit allows, and stays there (taking from it does nothing) until it
/// no longer counts: what it held beyond is not known, so the store keeps
/// the window shut rather than guess. Only usage reported far beyond every
/// limit gets there; below it every count is exact, in Rust and in the
/// Redis scripts' doubles alike.
///
/// [`MAX_AMOUNT`]: crate::MAX_AMOUNT
pub const SATURATED: u64 = 1 << 52;

/// `x + a`, saturated at [`SATURATED`].
fn sat_add(x: u64, a: u64) -> u64 {
    x.saturating_add(a).min(SATURATED)
}

/// `x - a` (at least 0), unless `x` is saturated: then it stays.
fn sat_sub(x: u64, a: u64) -> u64 {
    if x >= SATURATED {
        x
    } else {
        x.saturating_sub(a)
    }
}

/// `⌈a × b / c⌉`, at most `cap` (`c > 0`).
fn muldiv_ceil(a: u64, b: u64, c: u64, cap: u64) -> u64 {
    let q = (u128::from(a) * u128::from(b)).div_ceil(u128::from(c));
    q.min(u128::from(cap)) as u64
}

// Where a record was counted (the bits of its `counted` field), so that
// adjusting or refunding it undoes exactly that, even when the limits
// changed since. The Redis scripts keep the same bits under the same names.

/// A record's bit: counted in the rolling window of the per-window limits.
pub const IN_WINDOW: u8 = 1;
/// A record's bit: counted in the one-second window (`rps`).
pub const IN_SECOND: u8 = 2;
/// A record's bit: counted in the rolling day (`rpd`/`tpd`).
pub const IN_DAY_RING: u8 = 4;
/// A record's bit: counted in its calendar day.
pub const IN_CALENDAR: u8 = 8;
/// A record's bit: counted in the token buckets.
pub const IN_BUCKETS: u8 = 16;

/// The outside usage held is the estimate from the provider's report and
/// `1 / EXTERNAL_MARGIN` more, for what it varies by between two reports.
pub const EXTERNAL_MARGIN: u64 = 16;
/// A record's bit: counted for the calendar day after its slot's too (its
/// slot is within the guard band before midnight).
pub const ZONE_NEXT: u8 = 32;

/// A rolling window as time buckets with running totals.
///
/// Only buckets that hold something are kept (a sorted map by bucket
/// index), so a slot far ahead of the others (behind a daily limit or a
/// cooldown) costs one bucket, not the empty ones between.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Ring {
    /// Bucket width in microseconds (0 until first use).
    g: u64,
    /// Non-empty buckets by index (`slot / g`).
    sums: BTreeMap<u64, [u64; DIMS]>,
    totals: [u64; DIMS],
    /// Buckets dropped within the last span, oldest first, kept (by the
    /// per-window ring only) to tell what the ring held at an instant of the
    /// recent past ([`Ring::counted_since`]).
    #[serde(default)]
    expired: VecDeque<(u64, [u64; DIMS])>,
}

impl Ring {
    fn width_for(span: u64) -> u64 {
        (span / BUCKETS).max(1)
    }

    /// Makes sure the bucket width fits `span`; when the window changed,
    /// moves every bucket to the new bucket holding its end (later, so
    /// conservative).
    fn fit(&mut self, span: u64) {
        let g = Self::width_for(span);
        if self.g == g {
            return;
        }
        let old = std::mem::take(&mut self.sums);
        self.expired.clear();
        let old_g = self.g;
        let saturated = self.totals.map(|t| t >= SATURATED);
        self.g = g;
        self.totals = [0; DIMS];
        for (b, s) in old {
            let end = (b + 1) * old_g;
            self.add_at(end.div_ceil(g).saturating_sub(1), &s);
        }
        for d in 0..DIMS {
            if saturated[d] {
                self.totals[d] = SATURATED;
            }
        }
    }

    /// When bucket `b` stops counting.
    fn expiry(&self, b: u64, span: u64) -> u64 {
        (b + 1) * self.g + span
    }

    fn first(&self) -> Option<u64> {
        self.sums.keys().next().copied()
    }

    /// Drops the buckets that no longer count at `now` (keeping them for a
    /// span in `expired` when `history`).
    fn prune(&mut self, now: u64, span: u64, history: bool) {
        while let Some(b) = self.first() {
            if self.expiry(b, span) > now {
                break;
            }
            let s = self.sums.remove(&b).unwrap_or_default();
            for (t, v) in self.totals.iter_mut().zip(s) {
                *t = sat_sub(*t, v);
            }
            if history {
                self.expired.push_back((b, s));
            }
        }
        while let Some(&(b, _)) = self.expired.front() {
            if self.expiry(b, span).saturating_add(span) > now {
                break;
            }
            self.expired.pop_front();
        }
        if self.sums.is_empty() {
            self.totals = [0; DIMS];
        }
    }

    /// Adds to bucket `b`.
    fn add_at(&mut self, b: u64, a: &[u64; DIMS]) {
        let sums = self.sums.entry(b).or_insert([0; DIMS]);
        for d in 0..DIMS {
            sums[d] = sat_add(sums[d], a[d]);
            self.totals[d] = sat_add(self.totals[d], a[d]);
        }
        if *sums == [0; DIMS] {
            self.sums.remove(&b);
        }
    }

    /// Whether a record at `slot` still counts at `now`.
    fn counts(&self, slot: u64, now: u64, span: u64) -> bool {
        self.g > 0 && (slot / self.g + 1) * self.g + span > now
    }

    /// Adds a new reservation at `slot` (`slot >= now`).
    fn add(&mut self, slot: u64, a: &[u64; DIMS]) {
        self.add_at(slot / self.g, a);
    }

    /// Adds to a record that still counts, in its slot's bucket (after a
    /// regrid its older amounts may sit in a later bucket; either way they
    /// count at least as long as the record does).
    fn readd(&mut self, slot: u64, a: &[u64; DIMS], now: u64, span: u64) {
        if self.counts(slot, now, span) {
            self.add_at(slot / self.g, a);
        }
    }

    /// Removes a record's amounts if it still counts, from its slot's bucket
    /// (as much as that holds). After a regrid the amounts may sit in a later
    /// bucket: taking them from an earlier one only makes the window count
    /// more between the two buckets' expiries, and what is not found stays
    /// counted; both err on the safe side.
    fn sub(&mut self, slot: u64, a: &[u64; DIMS], now: u64, span: u64) {
        if !self.counts(slot, now, span) {
            return;
        }
        let b = slot / self.g;
        let Some(sums) = self.sums.get_mut(&b) else {
            return;
        };
        for d in 0..DIMS {
            if sums[d] < SATURATED {
                let v = a[d].min(sums[d]);
                sums[d] -= v;
                self.totals[d] = sat_sub(self.totals[d], v);
            }
        }
        if *sums == [0; DIMS] {
            self.sums.remove(&b);
        }
    }

    /// The earliest instant `≥ from` at which the window has room for `a`
    /// under `limits` (0 = off), with `hold` (amounts held until an instant)
    /// on top. The hold stands for usage that goes on (a client outside the
    /// fleet): it counts at every later instant, not only until its end,
    /// unless nothing fits beside it; then the request waits for its end.
    fn earliest(
        &self,
        from: u64,
        span: u64,
        a: &[u64; DIMS],
        limits: &[u64; DIMS],
        hold: (&[u64; DIMS], u64),
    ) -> u64 {
        let fits = |t: &[u64; DIMS]| {
            (0..DIMS).all(|d| limits[d] == 0 || t[d].saturating_add(a[d]) <= limits[d])
        };
        let mut t = self.totals;
        let (held, until) = hold;
        let holding = until > from && held.iter().any(|&h| h > 0);
        if holding {
            for d in 0..DIMS {
                t[d] = sat_add(t[d], held[d]);
            }
        }
        // Dropping buckets only lowers the totals: if all fit, so does the rest.
        if fits(&t) {
            return from;
        }
        let mut at = from;
        for (&b, sums) in &self.sums {
            let e = self.expiry(b, span);
            if e > from && fits(&t) {
                return at;
            }
            for d in 0..DIMS {
                // A saturated total stays: the window is shut until its
                // last bucket no longer counts.
                t[d] = sat_sub(t[d], sums[d]);
            }
            at = at.max(e);
        }
        if holding && !fits(&t) {
            at = at.max(until);
        }
        at
    }

    /// What the reservations slotted by `until` that still counted at `at`
    /// hold, to the precision of a bucket: the buckets that start by
    /// `until` and had not expired at `at`, those dropped since included
    /// (`at` at most a span ago).
    fn counted_since(&self, at: u64, until: u64, span: u64) -> [u64; DIMS] {
        let mut out = [0; DIMS];
        if self.g == 0 {
            return out;
        }
        let live = self.sums.range(..=until / self.g);
        for (b, sums) in self.expired.iter().map(|(b, s)| (b, s)).chain(live) {
            if self.expiry(*b, span) > at {
                for d in 0..DIMS {
                    out[d] = sat_add(out[d], sums[d]);
                }
            }
        }
        out
    }

    /// Whether nothing in the ring counts at `now`.
    fn idle(&self, now: u64, span: u64) -> bool {
        self.sums
            .keys()
            .next_back()
            .is_none_or(|&b| self.expiry(b, span) <= now)
    }
}

/// One token bucket (GCRA) of one dimension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Gcra {
    /// Theoretical arrival time: when the bucket will be full again.
    tat: u64,
    /// When the bucket was last found full; the consumption of reservations
    /// before then has drained, so giving it back must not credit the bucket.
    full_at: u64,
}

/// Time (µs) that `amount` occupies in a bucket of `limit` per `window`,
/// rounded up and capped at the horizon.
fn emission(amount: u64, limit: u64, window: u64) -> u64 {
    if limit == 0 || amount == 0 {
        return 0;
    }
    muldiv_ceil(amount, window, limit, HORIZON)
}

/// Calendar-day counts, from the day of the last "now" to the day of the
/// last queued slot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Days {
    first: i64,
    counts: VecDeque<[u64; 2]>,
}

impl Days {
    fn get(&self, day: i64) -> [u64; 2] {
        day.checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.counts.get(i).copied())
            .unwrap_or([0, 0])
    }

    fn add(&mut self, day: i64, a: [u64; 2]) {
        if self.counts.is_empty() {
            self.first = day;
        }
        if day < self.first {
            return; // a past day: no longer counts
        }
        while self.first + (self.counts.len() as i64) <= day {
            self.counts.push_back([0, 0]);
        }
        let c = &mut self.counts[(day - self.first) as usize];
        c[0] = sat_add(c[0], a[0]);
        c[1] = sat_add(c[1], a[1]);
    }

    fn sub(&mut self, day: i64, a: [u64; 2]) {
        if day < self.first {
            return;
        }
        if let Some(c) = self.counts.get_mut((day - self.first) as usize) {
            c[0] = sat_sub(c[0], a[0]);
            c[1] = sat_sub(c[1], a[1]);
        }
    }

    /// Drops the days before `today`.
    fn prune(&mut self, today: i64) {
        while !self.counts.is_empty() && self.first < today {
            self.counts.pop_front();
            self.first += 1;
        }
    }

    fn idle(&self, today: i64) -> bool {
        self.counts
            .iter()
            .enumerate()
            .all(|(i, c)| self.first + (i as i64) < today || *c == [0, 0])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    slot: u64,
    amounts: Amounts,
    /// When the record is forgotten (its retention ends).
    expires: u64,
    /// The calendar day it was counted in (with `IN_CALENDAR`).
    day: i64,
    /// Where it was counted: `IN_*` and `ZONE_NEXT` bits.
    counted: u8,
}

/// Reservations by id. Ids are handed out in sequence, so the records live
/// in a deque indexed by `id - first`; a refunded one leaves a hole until
/// the holes and expired records at the front are dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Records {
    first: u64,
    slots: VecDeque<Option<Record>>,
    live: usize,
}

impl Records {
    fn index(&self, id: u64) -> Option<usize> {
        usize::try_from(id.checked_sub(self.first)?).ok()
    }

    fn get(&self, id: u64) -> Option<&Record> {
        self.slots.get(self.index(id)?)?.as_ref()
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Record> {
        let i = self.index(id)?;
        self.slots.get_mut(i)?.as_mut()
    }

    fn push(&mut self, id: u64, r: Record) {
        if self.slots.is_empty() {
            self.first = id;
        }
        self.slots.push_back(Some(r));
        self.live += 1;
    }

    fn remove(&mut self, id: u64) -> Option<Record> {
        let i = self.index(id)?;
        let r = self.slots.get_mut(i)?.take()?;
        self.live -= 1;
        self.trim(0);
        Some(r)
    }

    /// Drops holes, and records whose retention ended by `now`, from the
    /// front.
    fn trim(&mut self, now: u64) {
        while let Some(front) = self.slots.front() {
            match front {
                Some(r) if r.expires > now => break,
                Some(_) => self.live -= 1,
                None => {}
            }
            self.slots.pop_front();
            self.first += 1;
        }
    }
}

/// The whole state of one key: see the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    /// The next record id. Ids are unique over time, not only within one
    /// state: a fresh state starts at "now" in microseconds, so a permit
    /// from a forgotten state can never settle a new reservation.
    next_record: u64,
    /// The slot of the latest reservation made (for smoothing).
    last_slot: u64,
    /// The id of the latest reservation made (token-bucket credits).
    last_id: Option<u64>,
    /// Reservations whose slot was in the future when last looked at.
    pending: BTreeSet<(u64, u64)>,
    records: Records,
    window: Ring,
    second: Ring,
    day_ring: Ring,
    days: Days,
    buckets: [Gcra; DIMS],
    cooldown_until: u64,
    /// Usage the provider counts and this state does not, per per-window
    /// dimension, held until `external_until` (rolling windows only).
    #[serde(default)]
    external: [u64; DIMS],
    #[serde(default)]
    external_until: u64,
    /// The largest estimate of the outside usage reported in the period
    /// `external_period` (`now / 2 window`): the hold is the largest of
    /// this period's and the previous one's.
    #[serde(default)]
    external_peak: [u64; DIMS],
    #[serde(default)]
    external_period: u64,
    /// The latest "now" seen: time never goes back for a key, so that
    /// callers whose clock readings reach it out of order (threads racing
    /// for its lock, a server clock stepped back) cannot break FIFO.
    last_now: u64,
    /// The plan of the limits last used; not part of the state proper.
    #[serde(skip)]
    plan: PlanCache,
}

/// The last limits seen and their [`Plan`], so that a key called with the
/// same limits again (the usual case) skips validating and deriving them.
#[derive(Clone, Debug, Default)]
struct PlanCache(Option<(Limits, Plan)>);

impl PlanCache {
    fn get(&mut self, limits: &Limits) -> Result<Plan> {
        if let Some((l, p)) = &self.0 {
            if l == limits {
                return Ok(*p);
            }
        }
        let p = limits.plan()?;
        self.0 = Some((*limits, p));
        Ok(p)
    }
}

/// A cache is not state: two states are equal whatever they cached.
impl PartialEq for PlanCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for PlanCache {}

/// What waiting reservations hold, per place they are counted
/// ([`KeyState::status`]).
#[derive(Default)]
struct Queued {
    all: [u64; DIMS],
    window: [u64; DIMS],
    second: u64,
    day_ring: [u64; 2],
    today: [u64; 2],
}

/// The non-zero amounts of a per-window array, by dimension.
fn per_window_dims(a: &[u64; DIMS]) -> Vec<(Dimension, u64)> {
    crate::calibration::CALIBRATED
        .iter()
        .zip(a)
        .filter(|(_, &v)| v > 0)
        .map(|(&d, &v)| (d, v))
        .collect()
}

fn day_amounts(a: &Amounts) -> [u64; 2] {
    [a.0[REQ], a.0[TOK]]
}

fn as_ring(a: [u64; 2]) -> [u64; DIMS] {
    let mut r = [0; DIMS];
    r[REQ] = a[0];
    r[TOK] = a[1];
    r
}

fn requests_only(a: &Amounts) -> [u64; DIMS] {
    let mut r = [0; DIMS];
    r[REQ] = a.0[REQ];
    r
}

fn check_now(now: Timestamp) -> Result<u64> {
    let us = now.as_micros();
    if us > HORIZON {
        return Err(Error::now_beyond_horizon(now));
    }
    Ok(us)
}

impl KeyState {
    /// `now`, checked, and never before a "now" already seen.
    fn monotonic(&mut self, now: Timestamp) -> Result<u64> {
        let us = check_now(now)?.max(self.last_now);
        self.last_now = us;
        Ok(us)
    }
}

/// The calendar day of `at`, and whether `at + guard` is in the next one.
fn calendar_day(p: &Plan, at: u64) -> Option<(i64, bool)> {
    let DayWindow::Calendar {
        reset_minutes,
        zone,
    } = p.day
    else {
        return None;
    };
    let di = calendar::day_index(&zone, reset_minutes, at as i64);
    let next = calendar::day_start(&zone, reset_minutes, di + 1);
    Some((di, ((at + p.guard_us) as i64) >= next))
}

impl KeyState {
    /// An empty state: nothing reserved.
    pub fn new() -> Self {
        Self::default()
    }

    /// Brings the state up to `now`: drops what no longer counts.
    fn advance(&mut self, p: &Plan, now: u64) {
        let (w, s, d) = p.spans;
        self.window.fit(w);
        self.second.fit(s);
        self.day_ring.fit(d);
        self.window.prune(now, w, true);
        self.second.prune(now, s, false);
        self.day_ring.prune(now, d, false);
        if let Some((today, _)) = calendar_day(p, now) {
            self.days.prune(today);
        }
        while let Some(&(slot, _)) = self.pending.first() {
            if slot > now {
                break;
            }
            self.pending.pop_first();
        }
        self.records.trim(now);
        if self.external_until <= now {
            self.external = [0; DIMS];
            self.external_peak = [0; DIMS];
            self.external_until = 0;
        }
    }

    fn retention(p: &Plan) -> u64 {
        p.retention_us()
    }

    /// The earliest slot for `a`, from `now`.
    fn earliest(&self, p: &Plan, a: &Amounts, now: u64) -> u64 {
        let (w, s, d) = p.spans;
        let tail = self.pending.last().map_or(0, |q| q.0);
        let mut at = now.max(tail).max(self.cooldown_until);
        if let Some(sp) = p.spacing_us {
            if self.last_slot > 0 {
                at = at.max(self.last_slot + sp);
            }
        }
        match p.kind {
            WindowKind::Rolling => {
                at = self
                    .window
                    .earliest(at, w, &a.0, &p.wl, (&self.external, self.external_until))
            }
            WindowKind::TokenBucket => {
                let tau = p.window_us - p.guard_us;
                for dim in 0..DIMS {
                    let inc = emission(a.0[dim], p.wl[dim], p.window_us);
                    if inc > 0 {
                        let tat = self.buckets[dim].tat;
                        at = at.max(tat.saturating_add(inc).saturating_sub(tau));
                    }
                }
            }
        }
        if p.rps > 0 {
            let mut rps = [0; DIMS];
            rps[REQ] = p.rps;
            at = self.second.earliest(at, s, &a.0, &rps, (&[0; DIMS], 0));
        }
        let dl = p.day_l;
        if dl != [0, 0] {
            match p.day {
                DayWindow::Rolling => {
                    at = self
                        .day_ring
                        .earliest(at, d, &a.0, &as_ring(dl), (&[0; DIMS], 0));
                }
                DayWindow::Calendar {
                    reset_minutes,
                    zone,
                } => {
                    let da = day_amounts(a);
                    let fits = |used: [u64; 2]| {
                        (0..2).all(|i| dl[i] == 0 || used[i].saturating_add(da[i]) <= dl[i])
                    };
                    // Each pass moves to the next day; past the last day
                    // with counts, everything fits.
                    for _ in 0..self.days.counts.len() + 3 {
                        let Some((di, zone_next)) = calendar_day(p, at) else {
                            break;
                        };
                        if fits(self.days.get(di)) && (!zone_next || fits(self.days.get(di + 1))) {
                            break;
                        }
                        let next = calendar::day_start(&zone, reset_minutes, di + 1) as u64;
                        at = at.max(next);
                    }
                }
            }
        }
        at
    }

    /// Reserves one request of `cost` at `now`: the state machine's main
    /// transition. See [`Store::reserve`](crate::Store::reserve).
    ///
    /// # Errors
    /// Bad limits or cost ([`Error::InvalidNumber`], [`Error::InvalidConfig`],
    /// [`Error::ExceedsLimit`]); the state is then unchanged.
    pub fn reserve(
        &mut self,
        limits: &Limits,
        cost: &Cost,
        now: Timestamp,
        max_wait: Option<Duration>,
    ) -> Result<Decision> {
        let p = &self.plan.get(limits)?;
        let a = p.amounts(cost)?;
        let now_us = self.monotonic(now)?;
        let now = Timestamp::from_micros(now_us);
        self.advance(p, now_us);
        let slot = self.earliest(p, &a, now_us);
        if slot > HORIZON {
            return Err(Error::slot_beyond_horizon(Timestamp::from_micros(slot)));
        }
        if let Some(max) = max_wait {
            if slot - now_us > u64::try_from(max.as_micros()).unwrap_or(u64::MAX) {
                return Ok(Decision::Denied(NotUntil {
                    earliest: Timestamp::from_micros(slot),
                    now,
                }));
            }
        }
        if self.records.slots.is_empty() {
            self.next_record = self.next_record.max(now_us);
        }
        let id = self.next_record;
        self.next_record += 1;
        let position = if slot > now_us {
            self.pending.len() as u64 + 1
        } else {
            0
        };
        self.last_slot = self.last_slot.max(slot);
        self.last_id = Some(id);
        let (counted, day) = self.commit(p, slot, &a);
        if slot > now_us {
            self.pending.insert((slot, id));
        }
        self.records.push(
            id,
            Record {
                slot,
                amounts: a,
                expires: slot + Self::retention(p),
                day,
                counted,
            },
        );
        Ok(Decision::Reserved(Reservation {
            record: RecordId(id),
            slot: Timestamp::from_micros(slot),
            now,
            position,
        }))
    }

    /// Counts a new reservation everywhere its limits count; returns where
    /// (the `IN_*` bits) and its calendar day.
    fn commit(&mut self, p: &Plan, slot: u64, a: &Amounts) -> (u8, i64) {
        let mut counted = 0;
        let mut day = 0;
        if p.kind == WindowKind::Rolling && p.wl != [0; DIMS] {
            self.window.add(slot, &a.0);
            counted |= IN_WINDOW;
        }
        if p.rps > 0 {
            self.second.add(slot, &requests_only(a));
            counted |= IN_SECOND;
        }
        let da = day_amounts(a);
        if p.day_l != [0, 0] {
            match calendar_day(p, slot) {
                None => {
                    self.day_ring.add(slot, &as_ring(da));
                    counted |= IN_DAY_RING;
                }
                Some((di, zone_next)) => {
                    self.days.add(di, da);
                    day = di;
                    counted |= IN_CALENDAR;
                    if zone_next {
                        self.days.add(di + 1, da);
                        counted |= ZONE_NEXT;
                    }
                }
            }
        }
        if p.kind == WindowKind::TokenBucket {
            for dim in 0..DIMS {
                let inc = emission(a.0[dim], p.wl[dim], p.window_us);
                let b = &mut self.buckets[dim];
                if b.tat <= slot {
                    b.full_at = slot;
                    b.tat = (slot + inc).min(HORIZON);
                } else {
                    b.tat = (b.tat + inc).min(HORIZON);
                }
            }
            counted |= IN_BUCKETS;
        }
        (counted, day)
    }

    /// Removes (or, with `add`, adds back) a record's amounts in the
    /// windows and days it was counted in. Token buckets are handled by
    /// the callers.
    fn recount(&mut self, p: &Plan, r: &Record, a: &Amounts, now: u64, add: bool) {
        let (w, s, d) = p.spans;
        let da = day_amounts(a);
        let ring_ops: [(u8, &mut Ring, u64, [u64; DIMS]); 3] = [
            (IN_WINDOW, &mut self.window, w, a.0),
            (IN_SECOND, &mut self.second, s, requests_only(a)),
            (IN_DAY_RING, &mut self.day_ring, d, as_ring(da)),
        ];
        for (bit, ring, span, amounts) in ring_ops {
            if r.counted & bit != 0 {
                if add {
                    ring.readd(r.slot, &amounts, now, span);
                } else {
                    ring.sub(r.slot, &amounts, now, span);
                }
            }
        }
        if r.counted & IN_CALENDAR != 0 {
            let days = if r.counted & ZONE_NEXT != 0 {
                &[r.day, r.day + 1][..]
            } else {
                &[r.day][..]
            };
            for &day in days {
                if add {
                    self.days.add(day, da);
                } else {
                    self.days.sub(day, da);
                }
            }
        }
    }

    /// Replaces a reservation's cost with `actual`.
    ///
    /// A reservation can be settled for [`RECORD_RETENTION`] after its slot
    /// (or its window, if longer); after that it is forgotten, and daily
    /// counts keep the amounts it had then.
    ///
    /// # Errors
    /// [`Error::UnknownRecord`]; bad numbers. The state is then unchanged.
    pub fn adjust(
        &mut self,
        limits: &Limits,
        record: RecordId,
        actual: &Cost,
        now: Timestamp,
    ) -> Result<()> {
        let p = &self.plan.get(limits)?;
        let new = actual.amounts(limits.burndown)?;
        let now_us = self.monotonic(now)?;
        self.advance(p, now_us);
        let Some(r) = self.records.get(record.0).copied() else {
            return Err(Error::UnknownRecord(record));
        };
        self.recount(p, &r, &r.amounts, now_us, false);
        self.recount(p, &r, &new, now_us, true);
        if r.counted & IN_BUCKETS != 0 {
            let latest = self.last_id == Some(record.0);
            self.adjust_buckets(p, r.slot, &r.amounts, &new, now_us, latest);
        }
        if let Some(rec) = self.records.get_mut(record.0) {
            rec.amounts = new;
        }
        Ok(())
    }

    /// Moves token buckets by the difference between `old` and `new` at
    /// `slot`: more is charged from now on; less is credited only for the
    /// latest reservation, and only while the bucket has not been full since
    /// `slot` (else it has drained already).
    fn adjust_buckets(
        &mut self,
        p: &Plan,
        slot: u64,
        old: &Amounts,
        new: &Amounts,
        now: u64,
        latest: bool,
    ) {
        for dim in 0..DIMS {
            let before = emission(old.0[dim], p.wl[dim], p.window_us);
            let after = emission(new.0[dim], p.wl[dim], p.window_us);
            let b = &mut self.buckets[dim];
            if after > before {
                if b.tat <= now {
                    b.tat = now;
                    b.full_at = now;
                }
                b.tat = (b.tat + (after - before)).min(HORIZON);
            } else if latest && slot >= b.full_at && b.tat < HORIZON {
                // A bucket at the horizon may hold more than it shows: no
                // credit then.
                b.tat = b.tat.saturating_sub(before - after);
            }
        }
    }

    /// Gives a reservation back.
    ///
    /// # Errors
    /// [`Error::UnknownRecord`]; the state is then unchanged.
    pub fn refund(&mut self, limits: &Limits, record: RecordId, now: Timestamp) -> Result<()> {
        let p = &self.plan.get(limits)?;
        let now_us = self.monotonic(now)?;
        self.advance(p, now_us);
        let Some(r) = self.records.remove(record.0) else {
            return Err(Error::UnknownRecord(record));
        };
        self.pending.remove(&(r.slot, record.0));
        self.recount(p, &r, &r.amounts, now_us, false);
        // A token bucket is credited only for the latest reservation: the
        // slots of later ones were set with this one's consumption, and
        // crediting it would let the next request crowd them.
        if r.counted & IN_BUCKETS != 0 && self.last_id == Some(record.0) {
            self.adjust_buckets(p, r.slot, &r.amounts, &Amounts::default(), now_us, true);
        }
        if self.last_id == Some(record.0) {
            self.last_id = None;
        }
        Ok(())
    }

    /// Holds the usage the provider counts beyond this state's own count:
    /// see [`Store::hold_external`](crate::Store::hold_external). Returns
    /// what is held (rolling windows) or added (token buckets).
    ///
    /// # Errors
    /// Bad limits or a "now" past the horizon; the state is then unchanged.
    pub fn hold_external(
        &mut self,
        limits: &Limits,
        usage: &crate::ExternalUsage,
        now: Timestamp,
    ) -> Result<Vec<(Dimension, u64)>> {
        let p = &self.plan.get(limits)?;
        let now_us = self.monotonic(now)?;
        self.advance(p, now_us);
        let at = usage.at.map_or(now_us, |t| t.as_micros().min(now_us));
        let reported = usage.per_window();
        let mut out = [0; DIMS];
        match p.kind {
            WindowKind::Rolling => {
                let (w, _, _) = p.spans;
                // The ring remembers the last span only: an older report is
                // read as of a span ago (what still counted then, on the
                // safe side).
                let at = at.max(now_us.saturating_sub(w));
                // Ours as the provider may have counted them: what still
                // counted in its window (without the guard band) when the
                // request went, and those slotted up to a guard band later.
                // The provider counted the request when it arrived, within
                // the guard band of `at` (what the band is for); by then it
                // may have counted those of the fleet's later ones that
                // overtook it on the way. (Counting all slotted up to the
                // answer would also count those sent while it was being
                // answered, which the provider had not seen: that reads
                // low by most of a latency's worth of sends.)
                let until = at.saturating_add(p.guard_us).min(now_us);
                let ours = self.window.counted_since(at, until, p.window_us);
                let mut estimate = [0; DIMS];
                for d in 0..DIMS {
                    if let Some(used) = reported[d] {
                        let ext = used.min(SATURATED).saturating_sub(ours[d]);
                        estimate[d] = (ext + ext / EXTERNAL_MARGIN).min(SATURATED);
                    }
                }
                // A report's estimate reads low rather than high: ours
                // counts reservations the provider had not seen when it
                // counted (those of a burst slotted with this one but sent
                // after it, those still on their way, those it refused). So
                // the hold is the largest estimate of this period of two
                // windows (`now / 2 window`) and the last: it rises at once
                // and falls only once a whole period has passed without one
                // as high. (Two windows: the fleet's reports come in bursts
                // about a window apart, and the next burst must find the
                // last one's estimate, wherever the periods begin.)
                // (A decay per report fails there: the many low reports of
                // a burst pull it down just when the burst needs it.)
                let period = now_us / (2 * p.window_us).max(1);
                if period == self.external_period {
                    for d in 0..DIMS {
                        self.external_peak[d] = self.external_peak[d].max(estimate[d]);
                        out[d] = self.external[d].max(estimate[d]);
                    }
                } else {
                    let next = period == self.external_period + 1;
                    for d in 0..DIMS {
                        let before = if next { self.external_peak[d] } else { 0 };
                        out[d] = before.max(estimate[d]);
                    }
                    self.external_peak = estimate;
                    self.external_period = period;
                }
                let reset = u64::try_from(usage.reset.as_micros()).unwrap_or(u64::MAX);
                let until = now_us.saturating_add(reset.min(w)).min(HORIZON);
                self.external = out;
                self.external_until = if out == [0; DIMS] { 0 } else { until };
            }
            WindowKind::TokenBucket => {
                for d in 0..DIMS {
                    let (Some(used), limit) = (reported[d], p.wl[d]) else {
                        continue;
                    };
                    if limit == 0 {
                        continue;
                    }
                    // The arrival time at which the bucket holds `used` at `at`.
                    let target = (at + emission(used.min(limit), limit, p.window_us)).min(HORIZON);
                    let b = &mut self.buckets[d];
                    if target > b.tat.max(now_us) {
                        let before =
                            muldiv_ceil(b.tat.saturating_sub(at), limit, p.window_us, SATURATED);
                        out[d] = used.min(limit).saturating_sub(before);
                        if b.tat <= now_us {
                            b.full_at = now_us;
                        }
                        b.tat = target;
                    }
                }
            }
        }
        Ok(per_window_dims(&out))
    }

    /// Starts (or extends) a cooldown until `until` (at the latest
    /// [`Timestamp::HORIZON`]).
    pub fn set_cooldown(&mut self, until: Timestamp) {
        self.cooldown_until = self.cooldown_until.max(until.as_micros().min(HORIZON));
    }

    /// The end of the cooldown in force at `now`.
    pub fn cooldown(&self, now: Timestamp) -> Option<Timestamp> {
        (self.cooldown_until > now.as_micros()).then(|| Timestamp::from_micros(self.cooldown_until))
    }

    /// Usage of every enabled limit at `now`.
    ///
    /// # Errors
    /// Bad limits.
    pub fn status(&mut self, limits: &Limits, now: Timestamp) -> Result<Status> {
        let p = &self.plan.get(limits)?;
        let now_us = self.monotonic(now)?;
        let now = Timestamp::from_micros(now_us);
        self.advance(p, now_us);
        let mut usage = Vec::new();
        let per_window = [
            Dimension::Rpm,
            Dimension::Tpm,
            Dimension::InputTpm,
            Dimension::OutputTpm,
            Dimension::Ipm,
        ];
        let day = calendar_day(p, now_us).map(|(d, _)| d);
        let today = day.map(|d| self.days.get(d));
        let q = self.queued(day);
        for d in Dimension::ALL {
            let limit = limits.effective(d);
            if limit == 0 {
                continue;
            }
            // What counts now, and of it what is still waiting.
            let (count, waiting, queued) = match d {
                Dimension::Rps => (self.second.totals[REQ], q.second, q.all[REQ]),
                Dimension::Rpd | Dimension::Tpd => {
                    let i = usize::from(d == Dimension::Tpd);
                    let all = q.all[if i == 0 { REQ } else { TOK }];
                    match today {
                        Some(c) => (c[i], q.today[i], all),
                        None => (
                            self.day_ring.totals[if i == 0 { REQ } else { TOK }],
                            q.day_ring[i],
                            all,
                        ),
                    }
                }
                _ => {
                    let idx = per_window.iter().position(|q| *q == d).unwrap_or(0);
                    let count = match p.kind {
                        WindowKind::Rolling => self.window.totals[idx],
                        WindowKind::TokenBucket => {
                            let ahead = self.buckets[idx].tat.saturating_sub(now_us);
                            muldiv_ceil(ahead, p.wl[idx], p.window_us, SATURATED)
                        }
                    };
                    (count, q.window[idx], q.all[idx])
                }
            };
            usage.push(Usage {
                dimension: d,
                used: sat_sub(count, waiting),
                queued,
                limit,
            });
        }
        let held = self.external_until > now_us;
        Ok(Status {
            now,
            usage,
            queue_depth: self.pending.len() as u64,
            queue_tail: self.pending.last().map(|q| Timestamp::from_micros(q.0)),
            cooldown_until: self.cooldown(now),
            external: if held {
                per_window_dims(&self.external)
            } else {
                Vec::new()
            },
            external_until: held.then(|| Timestamp::from_micros(self.external_until)),
            calibrated: Vec::new(),
            configured_differs: false,
        })
    }

    /// What the reservations still waiting hold: in all, and of it what the
    /// per-window count (rolling or bucket), the per-second ring, the
    /// rolling day and the calendar day `day` count now. O(waiting).
    fn queued(&self, day: Option<i64>) -> Queued {
        let mut q = Queued::default();
        for &(_, id) in &self.pending {
            let Some(r) = self.records.get(id) else {
                continue;
            };
            let a = &r.amounts.0;
            let da = day_amounts(&r.amounts);
            for d in 0..DIMS {
                q.all[d] = sat_add(q.all[d], a[d]);
                if r.counted & (IN_WINDOW | IN_BUCKETS) != 0 {
                    q.window[d] = sat_add(q.window[d], a[d]);
                }
            }
            if r.counted & IN_SECOND != 0 {
                q.second = sat_add(q.second, a[REQ]);
            }
            let today = day.is_some_and(|t| {
                r.counted & IN_CALENDAR != 0
                    && (r.day == t || (r.counted & ZONE_NEXT != 0 && r.day + 1 == t))
            });
            for i in 0..2 {
                if r.counted & IN_DAY_RING != 0 {
                    q.day_ring[i] = sat_add(q.day_ring[i], da[i]);
                }
                if today {
                    q.today[i] = sat_add(q.today[i], da[i]);
                }
            }
        }
        q
    }

    /// Whether nothing in this state matters any more at `now`, so that a
    /// store may forget it: no record held, no window or bucket with
    /// anything in it, no calendar day count for today or later, no cooldown.
    pub fn is_idle(&self, limits: &Limits, now: Timestamp) -> bool {
        let Ok(p) = &limits.plan() else {
            return false;
        };
        let now_us = now.as_micros();
        let (w, s, d) = p.spans;
        let today = calendar_day(p, now_us.min(HORIZON)).map_or(i64::MAX, |(d, _)| d);
        self.window.idle(now_us, w)
            && self.second.idle(now_us, s)
            && self.day_ring.idle(now_us, d)
            && self.buckets.iter().all(|b| b.tat <= now_us)
            && self.days.idle(today)
            && self.cooldown_until <= now_us
            && self.external_until <= now_us
            && self
                .records
                .slots
                .iter()
                .flatten()
                .all(|r| r.expires <= now_us)
    }

    /// How many reservations are held (for adjusting and refunding).
    pub fn records(&self) -> usize {
        self.records.live
    }
}

/// The one check of the state machine that looks inside it; the others,
/// through the public API, are in `tests/core/state.rs`.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::TimeZone;
    use crate::limits::DayWindow;

    const DAY_US: u64 = 86_400_000_000;

    fn at(us: u64) -> Timestamp {
        Timestamp::from_micros(1_767_225_600_000_000 + us)
    }

    fn reserved(d: Decision) -> Reservation {
        match d {
            Decision::Reserved(r) => r,
            other => panic!("expected a reservation, got {other:?}"),
        }
    }

    #[test]
    fn a_slot_a_day_ahead_costs_one_bucket_not_the_gap() {
        let limits = Limits::new()
            .rpm(100)
            .window(Duration::from_secs(1))
            .rpd(1)
            .day(DayWindow::Calendar {
                reset_minutes: 0,
                zone: TimeZone::Utc,
            });
        let mut s = KeyState::new();
        reserved(s.reserve(&limits, &Cost::request(), at(1), None).unwrap());
        let r = reserved(s.reserve(&limits, &Cost::request(), at(2), None).unwrap());
        assert_eq!(r.slot, at(DAY_US));
        assert_eq!(s.window.sums.len(), 2);
        s.refund(&limits, r.record, at(3)).unwrap();
        assert_eq!(s.window.sums.len(), 1);
    }
}
