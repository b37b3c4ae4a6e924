//! Runs the simulation binary end to end: no 429 may reach the workers.

use std::process::Command;

/// Runs a short simulation (6 s, 2 s window, 250 ms guard, no baseline)
/// with `extra` arguments; returns its JSON summary after checking that it
/// succeeded, saw no 429 and made a fair number of calls.
fn run_short(extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(["--duration", "6", "--window", "2", "--guard-ms", "250"])
        .args(["--no-baseline", "--json"])
        .args(extra)
        .output()
        .expect("the simulation runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["rejected_429"], 0, "{v}");
    assert!(v["calls"].as_u64().unwrap() > 20, "{v}");
    // A loose floor: the precise figure is the simulation's own job.
    assert!(v["utilisation"].as_f64().unwrap() > 0.5, "{v}");
    v
}

#[test]
fn simulation_sends_no_call_the_provider_rejects() {
    let v = run_short(&["--workers", "16"]);
    for key in ["wait_p50_ms", "wait_p99_ms", "binding_limit"] {
        assert!(!v[key].is_null(), "{key} missing in {v}");
    }
}

#[test]
fn bad_arguments_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(["--workers", "0"])
        .output()
        .expect("the simulation runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"));
}

/// Several processes share one Redis: the provider (metering in Redis on the
/// server's clock) sees no 429.
#[test]
fn processes_sharing_redis_send_no_call_the_provider_rejects() {
    let server = limiter_test_redis::RedisServer::start();
    let url = server.url();
    let v = run_short(&[
        "--store",
        "redis",
        "--redis-url",
        &url,
        "--processes",
        "3",
        "--workers",
        "12",
    ]);
    assert_eq!(v["processes"], 3, "{v}");
}
