//! Runs the `live` example end to end: it exits 0 (the simulated provider
//! never refused a connection nor answered 429) and its output shows the
//! cap, the back-pressure and the cooldown at work.

use std::process::Command;

#[test]
fn simulated_live_sessions_never_meet_a_refusal() {
    let out = Command::new(env!("CARGO_BIN_EXE_live"))
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary after"))
        .unwrap_or_else(|| panic!("no summary:\n{stdout}"));
    assert!(summary.contains("12 sessions, 48 turns"), "{summary}");
    assert!(
        summary.contains("peak open 3 of 3"),
        "the cap was never reached: {summary}"
    );
    assert!(
        summary.contains("refused connections 0, 429s 0"),
        "{summary}"
    );
    assert!(summary.contains("open now 0"), "{summary}");
    // Sessions waited for a slot, and turns for the token rate.
    let waits: Vec<(f64, f64)> = stdout
        .lines()
        .filter_map(|l| {
            let rest = l.split_once("waited ")?.1;
            let start: f64 = rest.split(' ').next()?.parse().ok()?;
            let bp: f64 = rest
                .split_once("start, ")?
                .1
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            Some((start, bp))
        })
        .collect();
    assert_eq!(waits.len(), 12, "{stdout}");
    assert!(
        waits.iter().any(|w| w.0 > 0.1),
        "no session waited for a slot:\n{stdout}"
    );
    assert!(
        waits.iter().any(|w| w.1 > 0.1),
        "no back-pressure:\n{stdout}"
    );
    assert!(
        stdout.contains("cools down 0.5 s for every client"),
        "{stdout}"
    );
}
