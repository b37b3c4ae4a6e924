//! The FIFO admission algorithm as a deterministic state machine.
//!
//! [`KeyState`] holds everything one key needs; every operation takes the
//! current time as an argument and does no I/O, so every store runs the same
//! logic (the in-memory store under a lock, the Redis store as a port of it
//! in Lua, checked against it by a differential test).
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

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::calendar;
use crate::error::{Error, Result};
use crate::limits::{Amounts, Cost, DayWindow, Dimension, Limits, WindowKind, DIMS, REQ, TOK};
use crate::store::{Decision, RecordId, Reservation, Status, Usage};
use crate::time::Timestamp;

/// How many buckets a rolling window (plus its guard band) is divided into.
pub const BUCKETS: u64 = 128;

/// How long a reservation can still be adjusted or refunded after its slot,
/// at least: the longer of this and the window plus the guard band.
pub const RECORD_RETENTION: Duration = Duration::from_secs(15 * 60);

const SECOND_US: u64 = 1_000_000;
const DAY_US: u64 = 86_400 * SECOND_US;

/// A rolling window as a ring of time buckets with running totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Ring {
    /// Bucket width in microseconds (0 until first use).
    g: u64,
    /// Index (`slot / g`) of the first bucket held.
    first: u64,
    sums: VecDeque<[u64; DIMS]>,
    totals: [u64; DIMS],
}

impl Ring {
    fn width_for(span: u64) -> u64 {
        (span / BUCKETS).max(1)
    }

    /// Makes sure the bucket width fits `span`; when the window changed,
    /// moves every bucket to the new bucket holding its end (conservative).
    fn fit(&mut self, span: u64) {
        let g = Self::width_for(span);
        if self.g == g {
            return;
        }
        if self.g == 0 || self.sums.is_empty() {
            self.g = g;
            self.sums.clear();
            self.totals = [0; DIMS];
            return;
        }
        let old: Vec<(u64, [u64; DIMS])> = self
            .sums
            .iter()
            .enumerate()
            .map(|(i, s)| ((self.first + i as u64 + 1) * self.g, *s))
            .collect();
        self.g = g;
        self.sums.clear();
        self.totals = [0; DIMS];
        for (end, s) in old {
            // The new bucket whose end is at or after the old end.
            let b = end.div_ceil(g).saturating_sub(1);
            self.add_at(b, &s);
        }
    }

    /// When bucket `i` (position in the ring) stops counting.
    fn expiry(&self, i: usize, span: u64) -> u64 {
        (self.first + i as u64 + 1) * self.g + span
    }

    /// Drops the buckets that no longer count at `now`.
    fn prune(&mut self, now: u64, span: u64) {
        while !self.sums.is_empty() && self.expiry(0, span) <= now {
            let s = self.sums.pop_front().unwrap_or_default();
            for (t, v) in self.totals.iter_mut().zip(s) {
                *t = t.saturating_sub(v);
            }
            self.first += 1;
        }
        if self.sums.is_empty() {
            self.totals = [0; DIMS];
        }
    }

    fn add_at(&mut self, b: u64, a: &[u64; DIMS]) {
        if self.sums.is_empty() {
            self.first = b;
        }
        if b < self.first {
            // Only reached by regridding: fold into the first bucket (later).
            let f = self.first;
            return self.add_at(f, a);
        }
        while self.first + (self.sums.len() as u64) <= b {
            self.sums.push_back([0; DIMS]);
        }
        let i = (b - self.first) as usize;
        for d in 0..DIMS {
            self.sums[i][d] += a[d];
            self.totals[d] += a[d];
        }
    }

    fn add(&mut self, slot: u64, a: &[u64; DIMS]) {
        self.add_at(slot / self.g, a);
    }

    /// Removes `a` from the bucket of `slot`, if that bucket still counts.
    fn sub(&mut self, slot: u64, a: &[u64; DIMS]) {
        if self.g == 0 {
            return;
        }
        let b = slot / self.g;
        if b < self.first || b >= self.first + self.sums.len() as u64 {
            return;
        }
        let i = (b - self.first) as usize;
        for d in 0..DIMS {
            let v = a[d].min(self.sums[i][d]);
            self.sums[i][d] -= v;
            self.totals[d] -= v;
        }
    }

    /// The earliest instant `≥ from` at which the window has room for `a`
    /// under `limits` (0 = off). Assumes every bucket is at or before `from`.
    fn earliest(&self, from: u64, span: u64, a: &[u64; DIMS], limits: &[u64; DIMS]) -> u64 {
        let fits = |t: &[u64; DIMS]| (0..DIMS).all(|d| limits[d] == 0 || t[d] + a[d] <= limits[d]);
        let mut t = self.totals;
        let mut at = from;
        let mut i = 0;
        while i < self.sums.len() && self.expiry(i, span) <= from {
            for d in 0..DIMS {
                t[d] -= self.sums[i][d];
            }
            i += 1;
        }
        while !fits(&t) && i < self.sums.len() {
            for d in 0..DIMS {
                t[d] -= self.sums[i][d];
            }
            at = at.max(self.expiry(i, span));
            i += 1;
        }
        at
    }

    /// What counts at `now` (buckets already pruned to `now`).
    fn used(&self) -> [u64; DIMS] {
        self.totals
    }
}

/// One token bucket (GCRA) of one dimension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Gcra {
    /// Theoretical arrival time: when the bucket will be full again.
    tat: u64,
    /// The slot of the last reservation that found the bucket full; the
    /// consumption of reservations before it has drained, so refunding them
    /// must not credit the bucket.
    full_at: u64,
}

/// Time (µs) that `amount` occupies in a bucket of `limit` per `window`.
fn emission(amount: u64, limit: u64, window: u64) -> u64 {
    if limit == 0 || amount == 0 {
        return 0;
    }
    (u128::from(amount) * u128::from(window)).div_ceil(u128::from(limit)) as u64
}

/// Counts of a calendar day, with what is already counted for the next day
/// by reservations slotted within the guard band before midnight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct DayCount {
    day: i64,
    used: [u64; 2],
    next: [u64; 2],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    slot: u64,
    amounts: Amounts,
    /// The rps ring and day counters' share (requests and combined tokens).
    pending: bool,
}

/// The whole state of one key: see the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    next_record: u64,
    /// The slot of the latest reservation made (for smoothing).
    last_slot: u64,
    /// The id of the latest reservation made (token-bucket credits).
    last_id: Option<u64>,
    /// Reservations whose slot was in the future when last looked at.
    pending: BTreeSet<(u64, u64)>,
    records: HashMap<u64, Record>,
    /// Record ids in the order their retention ends.
    expiry: VecDeque<(u64, u64)>,
    window: Ring,
    second: Ring,
    day_ring: Ring,
    day: DayCount,
    buckets: [Gcra; DIMS],
    cooldown_until: u64,
}

/// What a day limit needs: which of the day counters apply.
fn day_limits(limits: &Limits) -> [u64; 2] {
    [
        limits.effective(Dimension::Rpd),
        limits.effective(Dimension::Tpd),
    ]
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

impl KeyState {
    /// An empty state: nothing reserved.
    pub fn new() -> Self {
        Self::default()
    }

    fn spans(limits: &Limits) -> (u64, u64, u64) {
        let guard = limits.guard_ms * 1000;
        (
            limits.window_ms * 1000 + guard,
            SECOND_US + guard,
            DAY_US + guard,
        )
    }

    /// Brings the state up to `now`: drops what no longer counts.
    fn advance(&mut self, limits: &Limits, now: u64) {
        let (w, s, d) = Self::spans(limits);
        self.window.fit(w);
        self.second.fit(s);
        self.day_ring.fit(d);
        self.window.prune(now, w);
        self.second.prune(now, s);
        self.day_ring.prune(now, d);
        while let Some(&(slot, id)) = self.pending.first() {
            if slot > now {
                break;
            }
            self.pending.pop_first();
            if let Some(r) = self.records.get_mut(&id) {
                r.pending = false;
            }
        }
        while let Some(&(until, id)) = self.expiry.front() {
            if until > now {
                break;
            }
            self.expiry.pop_front();
            self.records.remove(&id);
        }
    }

    fn retention(limits: &Limits) -> u64 {
        let (w, _, _) = Self::spans(limits);
        w.max(RECORD_RETENTION.as_micros() as u64)
    }

    /// The earliest slot for `a`, from `now`.
    fn earliest(&self, limits: &Limits, a: &Amounts, now: u64) -> u64 {
        let (w, s, d) = Self::spans(limits);
        let tail = self.pending.last().map_or(0, |p| p.0);
        let mut at = now.max(tail).max(self.cooldown_until);
        if let Some(sp) = limits.spacing() {
            if self.next_record > 0 {
                at = at.max(self.last_slot + sp.as_micros() as u64);
            }
        }
        let wl = limits.window_limits();
        match limits.window_kind {
            WindowKind::Rolling => at = self.window.earliest(at, w, &a.0, &wl),
            WindowKind::TokenBucket => {
                let window = limits.window_ms * 1000;
                let tau = window - limits.guard_ms * 1000;
                for dim in 0..DIMS {
                    let inc = emission(a.0[dim], wl[dim], window);
                    if inc > 0 {
                        let tat = self.buckets[dim].tat;
                        at = at.max((tat + inc).saturating_sub(tau));
                    }
                }
            }
        }
        let mut rps = [0; DIMS];
        rps[REQ] = limits.effective(Dimension::Rps);
        at = self.second.earliest(at, s, &a.0, &rps);
        let dl = day_limits(limits);
        if dl != [0, 0] {
            match limits.day {
                DayWindow::Rolling => {
                    at = self.day_ring.earliest(at, d, &a.0, &as_ring(dl));
                }
                DayWindow::Calendar {
                    reset_minutes,
                    zone,
                } => {
                    let da = day_amounts(a);
                    let fits =
                        |used: [u64; 2]| (0..2).all(|i| dl[i] == 0 || used[i] + da[i] <= dl[i]);
                    let guard = limits.guard_ms * 1000;
                    for _ in 0..4 {
                        let di = calendar::day_index(&zone, reset_minutes, at as i64);
                        let zone_next =
                            calendar::day_index(&zone, reset_minutes, (at + guard) as i64) > di;
                        let used_today = self.day_used(di);
                        let ok = fits(used_today) && (!zone_next || fits(self.day_used(di + 1)));
                        if ok {
                            break;
                        }
                        at = calendar::day_start(&zone, reset_minutes, di + 1) as u64;
                    }
                }
            }
        }
        at
    }

    /// What counts for calendar day `di` so far.
    fn day_used(&self, di: i64) -> [u64; 2] {
        if di == self.day.day {
            self.day.used
        } else if di == self.day.day + 1 {
            self.day.next
        } else {
            [0, 0]
        }
    }

    /// Moves the calendar counters to day `di` (never backwards).
    fn roll_day(&mut self, di: i64) {
        if di == self.day.day + 1 {
            self.day.used = self.day.next;
            self.day.next = [0, 0];
            self.day.day = di;
        } else if di > self.day.day {
            self.day = DayCount {
                day: di,
                used: [0, 0],
                next: [0, 0],
            };
        }
    }

    /// Adds (or, with `add` false, removes) `a` at `slot` in the calendar
    /// counters.
    fn day_apply(&mut self, limits: &Limits, slot: u64, a: [u64; 2], add: bool) {
        let DayWindow::Calendar {
            reset_minutes,
            zone,
        } = limits.day
        else {
            return;
        };
        if day_limits(limits) == [0, 0] {
            return;
        }
        let guard = limits.guard_ms * 1000;
        let di = calendar::day_index(&zone, reset_minutes, slot as i64);
        let zone_next = calendar::day_index(&zone, reset_minutes, (slot + guard) as i64) > di;
        if add {
            self.roll_day(di);
        }
        let apply = |c: &mut [u64; 2]| {
            for i in 0..2 {
                c[i] = if add {
                    c[i] + a[i]
                } else {
                    c[i].saturating_sub(a[i])
                };
            }
        };
        if di == self.day.day {
            apply(&mut self.day.used);
            if zone_next {
                apply(&mut self.day.next);
            }
        } else if di + 1 == self.day.day && zone_next {
            apply(&mut self.day.used);
        }
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
        limits.validate()?;
        let a = limits.amounts(cost)?;
        let now_us = now.as_micros();
        self.advance(limits, now_us);
        let slot = self.earliest(limits, &a, now_us);
        if let Some(max) = max_wait {
            if slot - now_us > max.as_micros() as u64 {
                return Ok(Decision::Denied {
                    earliest: Timestamp::from_micros(slot),
                    now,
                });
            }
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
        self.commit(limits, slot, &a);
        let pending = slot > now_us;
        if pending {
            self.pending.insert((slot, id));
        }
        self.records.insert(
            id,
            Record {
                slot,
                amounts: a,
                pending,
            },
        );
        self.expiry.push_back((slot + Self::retention(limits), id));
        Ok(Decision::Reserved(Reservation {
            record: RecordId(id),
            slot: Timestamp::from_micros(slot),
            now,
            position,
        }))
    }

    /// Which rings count for these limits: (window, second, rolling day).
    /// A limit turned on later counts from then on.
    fn rings_on(limits: &Limits) -> (bool, bool, bool) {
        (
            limits.window_kind == WindowKind::Rolling && limits.window_limits() != [0; DIMS],
            limits.rps > 0,
            limits.day == DayWindow::Rolling && day_limits(limits) != [0, 0],
        )
    }

    fn commit(&mut self, limits: &Limits, slot: u64, a: &Amounts) {
        let (w, s, d) = Self::rings_on(limits);
        if w {
            self.window.add(slot, &a.0);
        }
        if s {
            let mut rps = [0; DIMS];
            rps[REQ] = a.0[REQ];
            self.second.add(slot, &rps);
        }
        let da = day_amounts(a);
        if d {
            self.day_ring.add(slot, &as_ring(da));
        }
        self.day_apply(limits, slot, da, true);
        if limits.window_kind == WindowKind::TokenBucket {
            let wl = limits.window_limits();
            let window = limits.window_ms * 1000;
            for dim in 0..DIMS {
                let inc = emission(a.0[dim], wl[dim], window);
                let b = &mut self.buckets[dim];
                if b.tat <= slot {
                    b.full_at = slot;
                    b.tat = slot + inc;
                } else {
                    b.tat += inc;
                }
            }
        }
    }

    /// Removes `a` at `slot` everywhere it counts (token buckets too when
    /// `credit_buckets` is set).
    fn uncommit(&mut self, limits: &Limits, slot: u64, a: &Amounts, credit_buckets: bool) {
        self.window.sub(slot, &a.0);
        let mut rps = [0; DIMS];
        rps[REQ] = a.0[REQ];
        self.second.sub(slot, &rps);
        let da = day_amounts(a);
        self.day_ring.sub(slot, &as_ring(da));
        self.day_apply(limits, slot, da, false);
        if credit_buckets && limits.window_kind == WindowKind::TokenBucket {
            let wl = limits.window_limits();
            let window = limits.window_ms * 1000;
            for dim in 0..DIMS {
                let inc = emission(a.0[dim], wl[dim], window);
                let b = &mut self.buckets[dim];
                if slot >= b.full_at {
                    b.tat = b.tat.saturating_sub(inc);
                }
            }
        }
    }

    /// Replaces a reservation's cost with `actual`.
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
        limits.validate()?;
        let new = actual.amounts(limits.burndown)?;
        self.advance(limits, now.as_micros());
        let Some(r) = self.records.get(&record.0).copied() else {
            return Err(Error::UnknownRecord(record));
        };
        // Remove the old amounts and add the new ones at the same slot. The
        // day and ring counters of a slot in the past stay as they are
        // (`add` on a pruned bucket is impossible: adds are limited to
        // buckets that still count).
        self.uncommit(limits, r.slot, &r.amounts, false);
        self.recommit(limits, r.slot, &new);
        let latest = self.last_id == Some(record.0);
        self.adjust_buckets(limits, r.slot, &r.amounts, &new, now.as_micros(), latest);
        if let Some(rec) = self.records.get_mut(&record.0) {
            rec.amounts = new;
        }
        Ok(())
    }

    /// Adds `a` at `slot` where that slot still counts (for adjust).
    fn recommit(&mut self, limits: &Limits, slot: u64, a: &Amounts) {
        let (w, s, d) = Self::rings_on(limits);
        let in_ring =
            |ring: &Ring| ring.g > 0 && slot / ring.g >= ring.first && !ring.sums.is_empty();
        if w && in_ring(&self.window) {
            self.window.add(slot, &a.0);
        }
        if s && in_ring(&self.second) {
            let mut rps = [0; DIMS];
            rps[REQ] = a.0[REQ];
            self.second.add(slot, &rps);
        }
        let da = day_amounts(a);
        if d && in_ring(&self.day_ring) {
            self.day_ring.add(slot, &as_ring(da));
        }
        // Records never lie in a day after the counters' day, so this only
        // adds where the slot's day still counts.
        self.day_apply(limits, slot, da, true);
    }

    /// Moves token buckets by the difference between `old` and `new` at
    /// `slot`: more is charged from now on; less is credited only for the
    /// latest reservation, and only while the bucket has not been full since
    /// `slot` (else it has drained already).
    fn adjust_buckets(
        &mut self,
        limits: &Limits,
        slot: u64,
        old: &Amounts,
        new: &Amounts,
        now: u64,
        latest: bool,
    ) {
        if limits.window_kind != WindowKind::TokenBucket {
            return;
        }
        let wl = limits.window_limits();
        let window = limits.window_ms * 1000;
        for dim in 0..DIMS {
            let before = emission(old.0[dim], wl[dim], window);
            let after = emission(new.0[dim], wl[dim], window);
            let b = &mut self.buckets[dim];
            if after > before {
                b.tat = b.tat.max(now) + (after - before);
            } else if latest && slot >= b.full_at {
                b.tat = b.tat.saturating_sub(before - after);
            }
        }
    }

    /// Gives a reservation back.
    ///
    /// # Errors
    /// [`Error::UnknownRecord`]; the state is then unchanged.
    pub fn refund(&mut self, limits: &Limits, record: RecordId, now: Timestamp) -> Result<()> {
        limits.validate()?;
        self.advance(limits, now.as_micros());
        let Some(r) = self.records.remove(&record.0) else {
            return Err(Error::UnknownRecord(record));
        };
        self.pending.remove(&(r.slot, record.0));
        // A token bucket is credited only for the latest reservation: the
        // slots of later ones were set with this one's consumption, and
        // crediting it would let the next request crowd them.
        let latest = self.last_id == Some(record.0);
        self.uncommit(limits, r.slot, &r.amounts, latest);
        if latest {
            self.last_id = None;
        }
        Ok(())
    }

    /// Starts (or extends) a cooldown until `until`.
    pub fn set_cooldown(&mut self, until: Timestamp) {
        self.cooldown_until = self.cooldown_until.max(until.as_micros());
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
        limits.validate()?;
        let now_us = now.as_micros();
        self.advance(limits, now_us);
        let mut usage = Vec::new();
        let window = limits.window_ms * 1000;
        let wl = limits.window_limits();
        let used_w = self.window.used();
        let per_window = [
            Dimension::Rpm,
            Dimension::Tpm,
            Dimension::InputTpm,
            Dimension::OutputTpm,
            Dimension::Ipm,
        ];
        for d in Dimension::ALL {
            let limit = limits.effective(d);
            if limit == 0 {
                continue;
            }
            let used = match d {
                Dimension::Rps => self.second.used()[REQ],
                Dimension::Rpd | Dimension::Tpd => {
                    let i = usize::from(d == Dimension::Tpd);
                    match limits.day {
                        DayWindow::Rolling => self.day_ring.used()[if i == 0 { REQ } else { TOK }],
                        DayWindow::Calendar {
                            reset_minutes,
                            zone,
                        } => {
                            self.day_used(calendar::day_index(&zone, reset_minutes, now_us as i64))
                                [i]
                        }
                    }
                }
                _ => {
                    let idx = per_window.iter().position(|p| *p == d).unwrap_or(0);
                    match limits.window_kind {
                        WindowKind::Rolling => used_w[idx],
                        WindowKind::TokenBucket => {
                            let ahead = self.buckets[idx].tat.saturating_sub(now_us);
                            (u128::from(ahead) * u128::from(wl[idx])).div_ceil(u128::from(window))
                                as u64
                        }
                    }
                }
            };
            usage.push(Usage {
                dimension: d,
                used,
                limit,
            });
        }
        Ok(Status {
            now,
            usage,
            queue_depth: self.pending.len() as u64,
            queue_tail: self.pending.last().map(|p| Timestamp::from_micros(p.0)),
            cooldown_until: self.cooldown(now),
        })
    }

    /// Whether nothing in this state matters any more at `now`, so that a
    /// store may forget it: no record held, no window or bucket with
    /// anything in it, no calendar day count for today or later, no cooldown.
    pub fn is_idle(&self, limits: &Limits, now: Timestamp) -> bool {
        let now_us = now.as_micros();
        let (w, s, d) = Self::spans(limits);
        let ring_idle =
            |r: &Ring, span: u64| r.sums.is_empty() || r.expiry(r.sums.len() - 1, span) <= now_us;
        let today = match limits.day {
            DayWindow::Calendar {
                reset_minutes,
                zone,
            } => calendar::day_index(&zone, reset_minutes, now_us as i64),
            DayWindow::Rolling => i64::MAX,
        };
        self.records.is_empty()
            && ring_idle(&self.window, w)
            && ring_idle(&self.second, s)
            && ring_idle(&self.day_ring, d)
            && self.buckets.iter().all(|b| b.tat <= now_us)
            && (self.day.used == [0, 0] && self.day.next == [0, 0] || self.day.day + 1 < today)
            && self.cooldown_until <= now_us
    }

    /// How many reservations are held (for adjusting and refunding).
    pub fn records(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_767_225_600_000_000;

    fn at(us: u64) -> Timestamp {
        Timestamp::from_micros(T0 + us)
    }

    fn reserved(d: Decision) -> Reservation {
        match d {
            Decision::Reserved(r) => r,
            other => panic!("expected a reservation, got {other:?}"),
        }
    }

    #[test]
    fn rolling_window_admits_up_to_the_limit_then_queues() {
        let limits = Limits::new()
            .rpm(3)
            .window(Duration::from_secs(10))
            .guard(Duration::ZERO);
        let mut s = KeyState::new();
        for _ in 0..3 {
            let r = reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
            assert_eq!(r.slot, at(0));
            assert_eq!(r.position, 0);
        }
        let r = reserved(
            s.reserve(&limits, &Cost::request(), at(1000), None)
                .unwrap(),
        );
        // Bucket width 10 s / 128 = 78_125 µs: the first bucket ends there.
        assert_eq!(r.slot, at(10_000_000 + 78_125));
        assert_eq!(r.position, 1);
    }

    #[test]
    fn denied_changes_nothing() {
        let limits = Limits::new().rpm(1).window(Duration::from_secs(10));
        let mut s = KeyState::new();
        reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
        let before = s.clone();
        let d = s
            .reserve(
                &limits,
                &Cost::request(),
                at(0),
                Some(Duration::from_secs(1)),
            )
            .unwrap();
        assert!(matches!(d, Decision::Denied { .. }));
        assert_eq!(s, before);
    }

    #[test]
    fn token_bucket_refills_continuously() {
        let limits = Limits::new()
            .tpm(1000)
            .window(Duration::from_secs(10))
            .guard(Duration::from_secs(1))
            .window_kind(WindowKind::TokenBucket);
        let mut s = KeyState::new();
        // The bucket holds 900 (the guard band's refill is kept back).
        let r = reserved(s.reserve(&limits, &Cost::tokens(900), at(0), None).unwrap());
        assert_eq!(r.slot, at(0));
        // 100 tokens refill in one second.
        let r = reserved(s.reserve(&limits, &Cost::tokens(100), at(0), None).unwrap());
        assert_eq!(r.slot, at(1_000_000));
    }

    #[test]
    fn refunding_drained_consumption_does_not_overfill_a_bucket() {
        let limits = Limits::new()
            .tpm(1000)
            .window(Duration::from_secs(10))
            .guard(Duration::ZERO)
            .window_kind(WindowKind::TokenBucket);
        let mut s = KeyState::new();
        let a = reserved(
            s.reserve(&limits, &Cost::tokens(1000), at(0), None)
                .unwrap(),
        );
        // 100 s later the bucket is full again; B takes 500.
        reserved(
            s.reserve(&limits, &Cost::tokens(500), at(100_000_000), None)
                .unwrap(),
        );
        s.refund(&limits, a.record, at(100_000_000)).unwrap();
        // Only 500 remain: a request of 600 must wait.
        let r = reserved(
            s.reserve(&limits, &Cost::tokens(600), at(100_000_000), None)
                .unwrap(),
        );
        assert!(r.slot > at(100_000_000));
    }

    #[test]
    fn calendar_day_resets_at_local_midnight() {
        use crate::calendar::TimeZone;
        let limits = Limits::new()
            .rpd(2)
            .guard(Duration::ZERO)
            .day(DayWindow::Calendar {
                reset_minutes: 0,
                zone: TimeZone::Utc,
            });
        let mut s = KeyState::new();
        // T0 is midnight UTC.
        reserved(s.reserve(&limits, &Cost::request(), at(5), None).unwrap());
        reserved(s.reserve(&limits, &Cost::request(), at(6), None).unwrap());
        let r = reserved(s.reserve(&limits, &Cost::request(), at(7), None).unwrap());
        assert_eq!(r.slot, at(DAY_US));
    }

    #[test]
    fn calendar_day_guard_counts_late_slots_for_both_days() {
        use crate::calendar::TimeZone;
        let limits =
            Limits::new()
                .rpd(2)
                .guard(Duration::from_millis(100))
                .day(DayWindow::Calendar {
                    reset_minutes: 0,
                    zone: TimeZone::Utc,
                });
        let mut s = KeyState::new();
        let late = DAY_US - 50_000; // 50 ms before midnight
        reserved(
            s.reserve(&limits, &Cost::request(), at(late), None)
                .unwrap(),
        );
        reserved(
            s.reserve(&limits, &Cost::request(), at(DAY_US), None)
                .unwrap(),
        );
        // The next day already counts both.
        let r = reserved(
            s.reserve(&limits, &Cost::request(), at(DAY_US + 1), None)
                .unwrap(),
        );
        assert_eq!(r.slot, at(2 * DAY_US));
    }

    #[test]
    fn smoothing_spaces_slots() {
        let limits = Limits::new().rps(10).smoothing(true).guard(Duration::ZERO);
        let mut s = KeyState::new();
        let a = reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
        let b = reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
        assert_eq!(b.slot.as_micros() - a.slot.as_micros(), 100_000);
    }

    #[test]
    fn cooldown_delays_slots() {
        let limits = Limits::new().rpm(100);
        let mut s = KeyState::new();
        s.set_cooldown(at(5_000_000));
        let r = reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
        assert_eq!(r.slot, at(5_000_000));
        assert_eq!(s.cooldown(at(0)), Some(at(5_000_000)));
        assert_eq!(s.cooldown(at(5_000_000)), None);
    }

    #[test]
    fn state_is_forgotten_only_when_idle() {
        let limits = Limits::new().rpm(10).window(Duration::from_secs(1));
        let mut s = KeyState::new();
        reserved(s.reserve(&limits, &Cost::request(), at(0), None).unwrap());
        assert!(!s.is_idle(&limits, at(1_000)));
        let later = at(RECORD_RETENTION.as_micros() as u64 + 1);
        s.status(&limits, later).unwrap();
        assert!(s.is_idle(&limits, later));
        assert_eq!(s.records(), 0);
    }
}
