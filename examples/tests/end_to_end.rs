//! Runs the `fallback`, `image` and `live` examples end to end: they exit
//! 0 and their output shows that fallbacks, cooldowns, waits for a
//! concurrent-session slot and back-pressure really happened.

use std::process::Command;

/// Runs a binary; returns its stdout after checking it exited 0.
fn run(bin: &str) -> String {
    let out = Command::new(bin).output().expect("the example runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// How many calls the summary says `model` served.
fn served(stdout: &str, model: &str) -> u64 {
    stdout
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(model)?.trim().strip_prefix("served "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no summary line for {model}:\n{stdout}"))
}

#[test]
fn text_calls_fall_back_from_gemini_to_openai_and_back() {
    let stdout = run(env!("CARGO_BIN_EXE_fallback"));
    assert!(served(&stdout, "gemini-2.5-flash") > 0, "{stdout}");
    assert!(served(&stdout, "gpt-4o-mini") > 0, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    // Gemini pushed back, was cooled down, and the same call went to OpenAI.
    let fell_back = lines
        .iter()
        .position(|l| {
            l.contains("served by gpt-4o-mini")
                && l.contains("gemini-2.5-flash answered 429")
                && l.contains("cooldown set")
        })
        .unwrap_or_else(|| panic!("no fallback on a 429:\n{stdout}"));
    // While Gemini cooled down it was skipped without a call...
    assert!(
        stdout.contains("gemini-2.5-flash skipped, cooling down"),
        "{stdout}"
    );
    // ...and once the cooldown was over it served again.
    assert!(
        lines[fell_back..]
            .iter()
            .any(|l| l.contains("served by gemini-2.5-flash")),
        "Gemini never came back:\n{stdout}"
    );
    assert!(stdout.contains("summary after"), "{stdout}");
}

#[test]
fn image_requests_fall_back_between_image_models() {
    let stdout = run(env!("CARGO_BIN_EXE_image"));
    for model in [
        "gpt-image-1-mini",
        "gpt-image-1",
        "imagen-4.0-fast-generate",
    ] {
        assert!(
            stdout.contains(&format!("served by {model}")),
            "{model} served nothing:\n{stdout}"
        );
    }
    // The limiter's IPM passed a model over without calling it...
    assert!(stdout.contains("would wait"), "{stdout}");
    // ...and the provider's 429 cooled one down.
    assert!(
        stdout.contains("gpt-image-1 answered 429: cooldown set"),
        "{stdout}"
    );
}

#[test]
fn simulated_live_sessions_never_meet_a_refusal() {
    // It exits 1 when the simulated provider refused anything.
    let stdout = run(env!("CARGO_BIN_EXE_live"));
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
