//! Key layout: every key of one limiter key shares one hash slot.

/// How a limiter key maps to Redis keys.
///
/// A limiter key `K` under prefix `P` lives in six Redis keys: `{P:K}:s`
/// (a hash: the state), `{P:K}:q` (a sorted set: the waiting slots),
/// `{P:K}:bw`, `:bs`, `:bd` (sorted sets: the occupied time buckets of the
/// rolling windows) and `{P:K}:bx` (a sorted set: the per-window buckets
/// dropped within the last window, for calibration); its limits of record
/// are in `{P:K}:rec` (a string). Its concurrency leases live in four more
/// ([`lease_keys`](Self::lease_keys)): `{P:K}:l` (a sorted set: the leases
/// held, by expiry), `{P:K}:lw` and `{P:K}:ld` (sorted sets: the waiters'
/// tickets by id, that is in queue order, and by deadline) and `{P:K}:lc` (a
/// hash: the last id handed out and the last "now" seen).
///
/// The braces are a hash tag, so all sit in one hash slot and the scripts
/// run on Redis Cluster. In `K`, `{`, `}` and `%` are percent-encoded, so no
/// model name can end the hash tag early or reach another key's state.
///
/// Every key has a TTL: the lease keys live until their last deadline (plus
/// a minute), and `{P:K}:lc` a day longer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyLayout {
    prefix: String,
}

impl Default for KeyLayout {
    fn default() -> Self {
        KeyLayout {
            prefix: Self::DEFAULT_PREFIX.to_string(),
        }
    }
}

impl KeyLayout {
    /// The default prefix: `llm-limiter`.
    pub const DEFAULT_PREFIX: &'static str = "llm-limiter";

    /// A layout under `prefix` (escaped like keys).
    pub fn new(prefix: &str) -> Self {
        KeyLayout {
            prefix: escape(prefix),
        }
    }

    /// The prefix in use.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis keys of `key`: the state hash, the queue, the bucket
    /// indexes of its three rolling windows, and those of the per-window
    /// buckets dropped within the last span.
    pub fn keys(&self, key: &str) -> [String; 6] {
        let tag = self.tag(key);
        ["s", "q", "bw", "bs", "bd", "bx"].map(|k| format!("{tag}:{k}"))
    }

    /// The Redis keys of `key`'s concurrency leases: the leases held, the
    /// waiters by id and by deadline, and the last id and time.
    pub fn lease_keys(&self, key: &str) -> [String; 4] {
        let tag = self.tag(key);
        ["l", "lw", "ld", "lc"].map(|k| format!("{tag}:{k}"))
    }

    /// The Redis key of `key`'s limits of record.
    pub fn record_key(&self, key: &str) -> String {
        format!("{}:rec", self.tag(key))
    }

    fn tag(&self, key: &str) -> String {
        format!("{{{}:{}}}", self.prefix, escape(key))
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_a_hash_tag_and_braces_cannot_break_out() {
        let l = KeyLayout::default();
        let keys = l.keys("gpt-4o");
        assert_eq!(keys[0], "{llm-limiter:gpt-4o}:s");
        assert_eq!(keys[1], "{llm-limiter:gpt-4o}:q");
        assert!(keys.iter().all(|k| k.starts_with("{llm-limiter:gpt-4o}:")));
        let [s, q, ..] = l.keys("evil}:x{");
        assert_eq!(s, "{llm-limiter:evil%7D:x%7B}:s");
        assert_eq!(q, "{llm-limiter:evil%7D:x%7B}:q");
        assert_ne!(l.keys("a%7D")[0], l.keys("a}")[0]);
        assert_eq!(KeyLayout::new("t{1}").keys("m")[0], "{t%7B1%7D:m}:s");
        // The lease keys share the same tag, and no name of the others.
        let leases = l.lease_keys("gpt-4o");
        assert_eq!(
            leases,
            [
                "{llm-limiter:gpt-4o}:l",
                "{llm-limiter:gpt-4o}:lw",
                "{llm-limiter:gpt-4o}:ld",
                "{llm-limiter:gpt-4o}:lc",
            ]
        );
        assert!(leases.iter().all(|k| !keys.contains(k)));
        assert_eq!(l.lease_keys("evil}:x{")[0], "{llm-limiter:evil%7D:x%7B}:l");
    }
}
