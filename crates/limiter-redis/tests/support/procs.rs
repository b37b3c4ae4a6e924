//! Worker processes for the multi-process tests: the test binary run again
//! (its `worker_entry` test, switched on by an environment variable), what
//! they print, and the window checks over the permits they report.

use std::fmt::Debug;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Worker processes, killed (by their pid) and reaped when dropped, so that
/// a failing test leaves none behind.
pub struct Workers {
    children: Vec<(usize, Child)>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            // Fails only when it already exited and was reaped.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What one worker printed.
pub struct Output {
    pub worker: usize,
    pub stdout: String,
    pub stderr: String,
}

impl Workers {
    /// Runs this test binary's `worker_entry` once per `(worker number,
    /// environment)`, with `switch` set to switch the worker on.
    pub fn spawn(
        switch: &str,
        workers: impl IntoIterator<Item = (usize, Vec<(&'static str, String)>)>,
    ) -> Workers {
        let exe = std::env::current_exe().expect("the test binary");
        let mut spawned = Workers {
            children: Vec::new(),
        };
        for (worker, env) in workers {
            let child = Command::new(&exe)
                .args(["--exact", "worker_entry", "--nocapture", "--test-threads=1"])
                .env(switch, "1")
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a worker");
            spawned.children.push((worker, child));
        }
        spawned
    }

    /// Waits for every worker to exit successfully within `deadline` and
    /// returns what they printed, in spawn order; panics (killing the rest)
    /// otherwise.
    pub fn wait(mut self, deadline: Duration) -> Vec<Output> {
        let until = Instant::now() + deadline;
        let mut readers = Vec::new();
        for (worker, child) in &mut self.children {
            let mut out = child.stdout.take().unwrap();
            let mut err = child.stderr.take().unwrap();
            let worker = *worker;
            readers.push(thread::spawn(move || {
                let mut stdout = String::new();
                let mut stderr = String::new();
                let e = thread::spawn(move || {
                    let _ = err.read_to_string(&mut stderr);
                    stderr
                });
                let _ = out.read_to_string(&mut stdout);
                Output {
                    worker,
                    stdout,
                    stderr: e.join().unwrap(),
                }
            }));
        }
        let mut statuses = vec![None; self.children.len()];
        while statuses.iter().any(Option::is_none) {
            for (i, (_, child)) in self.children.iter_mut().enumerate() {
                if statuses[i].is_none() {
                    statuses[i] = child.try_wait().expect("wait for a worker");
                }
            }
            assert!(
                Instant::now() < until,
                "workers still running after {deadline:?}: {statuses:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        let outputs: Vec<Output> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        for (status, out) in statuses.iter().zip(&outputs) {
            let status = status.unwrap();
            assert!(
                status.success(),
                "worker {} failed ({status}):\n{}\n{}",
                out.worker,
                out.stdout,
                out.stderr
            );
        }
        outputs
    }
}

/// The numbers of every `PERMIT ...` line a worker printed, each checked to
/// have `fields` of them.
pub fn permit_lines(stdout: &str, fields: usize) -> Vec<Vec<u64>> {
    let mut all = Vec::new();
    for line in stdout.lines() {
        // libtest may print `test worker_entry ... ` before it.
        let Some(at) = line.find("PERMIT ") else {
            continue;
        };
        let f: Vec<u64> = line[at + "PERMIT ".len()..]
            .split_whitespace()
            .map(|x| x.parse().unwrap_or_else(|_| panic!("bad line {line:?}")))
            .collect();
        assert_eq!(f.len(), fields, "bad line {line:?}");
        all.push(f);
    }
    all
}

/// The largest total of `amount` over the points whose time falls in one
/// half-open span `[t, t + span)`, and the `t` where it is reached: exact,
/// since a maximal span can always start at a point.
pub fn max_in_span(points: &[(u64, u64)], span: Duration) -> (u64, u64) {
    let span = span.as_micros() as u64;
    let mut sorted = points.to_vec();
    sorted.sort_unstable();
    let mut best = (0, 0);
    for (i, &(t, _)) in sorted.iter().enumerate() {
        let total: u64 = sorted[i..]
            .iter()
            .take_while(|(u, _)| *u < t + span)
            .map(|(_, a)| a)
            .sum();
        if total > best.0 {
            best = (total, t);
        }
    }
    best
}

/// Record ids are unique and, in their order (the order requests reached
/// the store), slots never decrease.
pub fn assert_fifo<T: Clone + Debug>(all: &[T], record: fn(&T) -> u64, slot: fn(&T) -> u64) {
    let mut in_order = all.to_vec();
    in_order.sort_by_key(record);
    for w in in_order.windows(2) {
        assert!(record(&w[1]) > record(&w[0]), "duplicate record id: {w:?}");
        assert!(
            slot(&w[1]) >= slot(&w[0]),
            "slots decrease in record order: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

/// The server's `TIME`, in microseconds since the epoch.
#[cfg(feature = "redis-rs")]
pub async fn server_time_async(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await.expect("TIME");
    secs * 1_000_000 + micros
}

/// Starts the workers of one run together, however late each process came
/// up: each counts itself in at `barrier`; the last of `parties` to arrive
/// names an instant 200 ms ahead on the server's clock; all sleep until it.
/// A fixed start instant chosen by the parent is not enough: on a loaded
/// machine a worker process may take seconds to start and connect.
#[cfg(feature = "redis-rs")]
pub async fn start_together(
    conn: &mut redis::aio::MultiplexedConnection,
    barrier: &str,
    parties: usize,
) {
    let count_key = format!("barrier:{barrier}:count");
    let at_key = format!("barrier:{barrier}:at");
    let arrived: usize = redis::cmd("INCR")
        .arg(&count_key)
        .query_async(conn)
        .await
        .expect("INCR the barrier");
    if arrived == parties {
        let at = server_time_async(conn).await + 200_000;
        let _: () = redis::cmd("SET")
            .arg(&at_key)
            .arg(at)
            .query_async(conn)
            .await
            .expect("SET the start");
    }
    let give_up = Instant::now() + Duration::from_secs(30);
    let at = loop {
        let at: Option<u64> = redis::cmd("GET")
            .arg(&at_key)
            .query_async(conn)
            .await
            .expect("GET the start");
        if let Some(at) = at {
            break at;
        }
        assert!(
            Instant::now() < give_up,
            "the other workers of {barrier} never came"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let now = server_time_async(conn).await;
    tokio::time::sleep(Duration::from_micros(at.saturating_sub(now))).await;
}
