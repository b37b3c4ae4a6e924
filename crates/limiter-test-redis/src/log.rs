//! Server log files and their tails in panic messages.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// How many lines of a log a panic message shows.
const TAIL_LINES: usize = 40;

/// Opens `path` for appending, creating it if needed.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The length of the file at `path`, 0 when it does not exist.
pub(crate) fn len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |meta| meta.len())
}

/// What was written to the file at `path` after its first `offset` bytes.
pub(crate) fn since(path: &Path, offset: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The last lines of the file at `path`, framed for a panic message.
pub(crate) fn tail(path: &Path) -> String {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(err) => return format!("(cannot read {}: {err})", path.display()),
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    format!(
        "--- last {} lines of {} ---\n{}\n--- end of log ---",
        lines.len() - start,
        path.display(),
        lines[start..].join("\n")
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut file = open_append(&path).unwrap();
        for i in 0..100 {
            writeln!(file, "line {i}").unwrap();
        }
        let tail = tail(&path);
        assert!(tail.contains("line 99"));
        assert!(tail.contains("line 60"));
        assert!(!tail.contains("line 59"));
        let offset = len(&path);
        writeln!(file, "after").unwrap();
        assert_eq!(since(&path, offset), "after\n");
    }

    #[test]
    fn tail_of_a_missing_file_says_so() {
        assert!(tail(Path::new("/nonexistent/limiter-test-redis.log")).contains("cannot read"));
    }
}
