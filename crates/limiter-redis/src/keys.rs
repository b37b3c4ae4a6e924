//! Key layout: every key of one limiter key shares one hash slot.

/// How a limiter key maps to Redis keys.
///
/// A limiter key `K` under prefix `P` lives in two Redis keys,
/// `{P:K}:s` (a hash: the state) and `{P:K}:q` (a sorted set: the waiting
/// slots). The braces are a hash tag, so both sit in one hash slot and the
/// scripts run on Redis Cluster. In `K`, `{`, `}` and `%` are
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

    /// The state hash and the queue of `key`.
    pub fn keys(&self, key: &str) -> [String; 2] {
        let tag = format!("{{{}:{}}}", self.prefix, escape(key));
        [format!("{tag}:s"), format!("{tag}:q")]
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
        assert_eq!(
            l.keys("gpt-4o"),
            [
                "{llm-limiter:gpt-4o}:s".to_string(),
                "{llm-limiter:gpt-4o}:q".to_string()
            ]
        );
        let [s, q] = l.keys("evil}:x{");
        assert_eq!(s, "{llm-limiter:evil%7D:x%7B}:s");
        assert_eq!(q, "{llm-limiter:evil%7D:x%7B}:q");
        assert_ne!(l.keys("a%7D")[0], l.keys("a}")[0]);
        assert_eq!(KeyLayout::new("t{1}").keys("m")[0], "{t%7B1%7D:m}:s");
    }
}
