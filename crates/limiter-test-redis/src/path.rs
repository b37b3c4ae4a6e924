//! Finding the Redis binaries on `PATH`.

use std::env;
use std::path::{Path, PathBuf};

/// The path of the `redis-server` binary, found on `PATH`.
///
/// # Panics
///
/// Panics when `redis-server` is not on `PATH`, saying how to install it:
/// tests that need Redis fail rather than skip.
pub fn redis_server_path() -> PathBuf {
    find_on_path("redis-server")
        .unwrap_or_else(|| panic!("redis-server not found: run ./scripts/test, which installs it"))
}

/// The path of the `redis-cli` binary, found on `PATH`.
///
/// # Panics
///
/// Panics when `redis-cli` is not on `PATH`, saying how to install it.
pub(crate) fn redis_cli_path() -> PathBuf {
    find_on_path("redis-cli")
        .unwrap_or_else(|| panic!("redis-cli not found: run ./scripts/test, which installs it"))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_redis_binaries() {
        assert!(redis_server_path().ends_with("redis-server"));
        assert!(redis_cli_path().ends_with("redis-cli"));
    }

    #[test]
    fn missing_binary_is_none() {
        assert_eq!(find_on_path("limiter-test-redis-no-such-binary"), None);
    }
}
