//! Key layout: every key of one limiter key shares one hash slot.

/// How a limiter key maps to Redis keys.
///
/// A limiter key `K` under prefix `P` lives in five Redis keys: `{P:K}:s`
/// (a hash: the state), `{P:K}:q` (a sorted set: the waiting slots) and
/// `{P:K}:bw`, `:bs`, `:bd` (sorted sets: the occupied time buckets of the
/// rolling windows). The braces are a hash tag, so all sit in one hash slot
/// and the scripts run on Redis Cluster. In `K`, `{`, `}` and `%` are
/// percent-encoded, so no model name can end the hash tag early or reach
/// another key's state.
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

    /// The Redis keys of `key`: the state hash, the queue, and the bucket
    /// indexes of its three rolling windows.
    pub fn keys(&self, key: &str) -> [String; 5] {
        let tag = format!("{{{}:{}}}", self.prefix, escape(key));
        ["s", "q", "bw", "bs", "bd"].map(|k| format!("{tag}:{k}"))
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
    }
}
