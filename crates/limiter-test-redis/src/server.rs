//! A standalone `redis-server` process.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::log;
use crate::path::redis_server_path;
use crate::port::{free_cluster_port, free_port};
use crate::resp::{Conn, Reply};

/// How long a server has to answer PING after being spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How many ports to try when the chosen one turns out to be taken.
const START_ATTEMPTS: usize = 10;
/// The server's log, in its directory.
const LOG_FILE: &str = "redis.log";
/// Flags of a cluster node.
const CLUSTER_ARGS: [&str; 6] = [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--cluster-node-timeout",
    "5000",
];

/// A `redis-server` process on a free port of 127.0.0.1, killed on drop.
///
/// The server runs in a temporary directory of its own, which holds its log
/// ([`log_path`](Self::log_path)) and is removed on drop. It persists
/// nothing (`--save ""`, `--appendonly no`), so a [restart](Self::restart)
/// starts empty.
pub struct RedisServer {
    /// `None` while stopped.
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    credentials: Option<Credentials>,
    extra_args: Vec<String>,
}

/// The ACL user a server is started with.
struct Credentials {
    user: String,
    password: String,
}

/// Why a server did not become ready.
enum StartError {
    /// Another process holds the port.
    PortTaken,
    /// The server exited before answering PING.
    Exited(ExitStatus),
    /// The server did not answer PING in time.
    Timeout,
    /// Spawning or watching the process failed.
    Io(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::PortTaken => f.write_str("the port is taken by another process"),
            StartError::Exited(status) => {
                write!(f, "redis-server exited ({status}) before answering PING")
            }
            StartError::Timeout => write!(
                f,
                "redis-server did not answer PING within {} s",
                READY_TIMEOUT.as_secs()
            ),
            StartError::Io(err) => write!(f, "{err}"),
        }
    }
}

impl From<io::Error> for StartError {
    fn from(err: io::Error) -> Self {
        StartError::Io(err)
    }
}

impl RedisServer {
    /// Starts a server without authentication and waits until it answers
    /// PING.
    ///
    /// # Panics
    ///
    /// Panics when `redis-server` is not on `PATH`, or when the server does
    /// not answer PING within 10 s; the message holds the end of its log.
    pub fn start() -> Self {
        Self::launch(None, Vec::new(), free_port)
    }

    /// Starts a server whose only enabled user is `user`, with `password`
    /// and every permission, and waits until it answers PING (after AUTH).
    ///
    /// The `default` user is disabled (unless `user` is `default`), so a
    /// connection that does not authenticate is refused with `-NOAUTH`.
    /// [`url`](Self::url) carries the credentials.
    ///
    /// # Panics
    ///
    /// Panics when `user` or `password` is empty or holds anything but
    /// ASCII letters, digits, `-`, `.`, `_` and `~` (so that both fit in a
    /// URL and a config line unescaped), and in the cases of
    /// [`start`](Self::start).
    pub fn start_with_password(user: &str, password: &str) -> Self {
        check_credential("user", user);
        check_credential("password", password);
        let credentials = Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        };
        Self::launch(Some(credentials), Vec::new(), free_port)
    }

    /// Starts a server that replicates the one on `primary_port` (of
    /// 127.0.0.1), and waits until it answers PING (not until it has
    /// synchronised).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_replica_of(primary_port: u16) -> Self {
        Self::start_with_args(vec![
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            primary_port.to_string(),
        ])
    }

    /// Starts a server with these extra arguments (no authentication).
    pub(crate) fn start_with_args(args: Vec<String>) -> Self {
        Self::launch(None, args, free_port)
    }

    /// Starts an empty cluster node (`--cluster-enabled yes`) whose cluster
    /// bus port (port + 10000) is free too.
    pub(crate) fn start_cluster_node() -> Self {
        let args = CLUSTER_ARGS.iter().map(|&arg| arg.to_owned()).collect();
        Self::launch(None, args, free_cluster_port)
    }

    /// The port the server listens on, on 127.0.0.1; it stays the same
    /// across [`stop`](Self::stop) and [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`, or `redis://USER:PASSWORD@127.0.0.1:PORT/`
    /// for a server started with
    /// [`start_with_password`](Self::start_with_password).
    pub fn url(&self) -> String {
        match &self.credentials {
            Some(Credentials { user, password }) => {
                format!("redis://{user}:{password}@127.0.0.1:{}/", self.port)
            }
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// The process id of the server, `None` while it is stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The file that receives the server's stdout and stderr, in its
    /// temporary directory.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// The server's directory (its log and working files).
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL) and reaps it, keeping its directory and
    /// port for a [`restart`](Self::restart). Does nothing when it is
    /// already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Both fail only if the process is already gone and reaped.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, on the same port and in the same directory,
    /// and waits until it answers PING; stops it first if it is running.
    /// Nothing is persisted, so the restarted server is empty.
    ///
    /// # Panics
    ///
    /// Panics when another process took the port meanwhile, or when the
    /// server does not answer PING within 10 s; the message holds the end
    /// of its log.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(err) = self.spawn_and_wait() {
            self.fail("cannot restart", &err);
        }
    }

    /// Creates the directory, then spawns the server on ports from
    /// `pick_port` until one is not taken.
    fn launch(
        credentials: Option<Credentials>,
        extra_args: Vec<String>,
        pick_port: fn() -> u16,
    ) -> Self {
        // Panic on a missing binary before anything else.
        redis_server_path();
        let dir = tempfile::Builder::new()
            .prefix("limiter-test-redis-")
            .tempdir()
            .unwrap_or_else(|err| panic!("cannot create a temp dir for redis-server: {err}"));
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            credentials,
            extra_args,
        };
        let mut attempt = 1;
        loop {
            server.port = pick_port();
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(StartError::PortTaken) if attempt < START_ATTEMPTS => attempt += 1,
                Err(err) => server.fail("cannot start", &err),
            }
        }
    }

    /// The command line of the server.
    fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--port".into(),
            self.port.to_string().into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            self.dir.path().into(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--protected-mode".into(),
            "yes".into(),
            "--daemonize".into(),
            "no".into(),
            // Log to stdout, which goes to `LOG_FILE`.
            "--logfile".into(),
            "".into(),
        ];
        if let Some(Credentials { user, password }) = &self.credentials {
            if user != "default" {
                args.extend(["--user".into(), "default".into(), "off".into()]);
            }
            args.push("--user".into());
            args.extend(
                [
                    user.as_str(),
                    "on",
                    &format!(">{password}"),
                    "~*",
                    "&*",
                    "+@all",
                ]
                .map(OsString::from),
            );
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args
    }

    /// Spawns the server on `self.port` and waits until it answers PING.
    fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        debug_assert!(self.child.is_none(), "spawning a running server");
        let log_path = self.log_path();
        let mut log = log::open_append(&log_path)?;
        let offset = log::len(&log_path);
        writeln!(
            log,
            "=== limiter-test-redis: starting redis-server on 127.0.0.1:{} ===",
            self.port
        )?;
        let child = Command::new(redis_server_path())
            .args(self.args())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let pid = child.id();
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(status)) => status,
                Some(Err(err)) => {
                    self.stop();
                    return Err(err.into());
                }
                None => unreachable!("the child was just stored"),
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(
                    if log::since(&log_path, offset).contains("Address already in use") {
                        StartError::PortTaken
                    } else {
                        StartError::Exited(status)
                    },
                );
            }
            match probe(self.port, self.credentials.as_ref()) {
                Ok(answering) if answering == pid => return Ok(()),
                // Another server answered: ours cannot bind the port.
                Ok(_) => {
                    self.stop();
                    return Err(StartError::PortTaken);
                }
                Err(_) if Instant::now() >= deadline => {
                    self.stop();
                    return Err(StartError::Timeout);
                }
                Err(_) => thread::sleep(POLL_INTERVAL),
            }
        }
    }

    fn fail(&self, what: &str, err: &StartError) -> ! {
        panic!(
            "{what} redis-server on 127.0.0.1:{}: {err}\n{}",
            self.port,
            log::tail(&self.log_path())
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .field("user", &self.credentials.as_ref().map(|c| &c.user))
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Connects to 127.0.0.1:`port`, authenticates if needed, checks that the
/// server answers `+PONG`, and returns its process id (`INFO server`).
fn probe(port: u16, credentials: Option<&Credentials>) -> io::Result<u32> {
    let mut conn = Conn::connect(port)?;
    if let Some(Credentials { user, password }) = credentials {
        expect_simple(conn.command(&["AUTH", user, password])?, "OK")?;
    }
    expect_simple(conn.command(&["PING"])?, "PONG")?;
    let reply = conn.command(&["INFO", "server"])?;
    let pid = match &reply {
        Reply::Bulk(Some(info)) => info
            .lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .and_then(|pid| pid.trim().parse().ok()),
        _ => None,
    };
    pid.ok_or_else(|| unexpected("INFO server", &reply))
}

fn expect_simple(reply: Reply, expected: &str) -> io::Result<()> {
    match reply {
        Reply::Simple(s) if s == expected => Ok(()),
        other => Err(unexpected(expected, &other)),
    }
}

fn unexpected(expected: &str, reply: &Reply) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("expected {expected}, got {reply}"),
    )
}

/// Panics unless `value` fits in a URL and a config line unescaped.
fn check_credential(what: &str, value: &str) {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
    assert!(
        ok,
        "the {what} of a test Redis server must be non-empty ASCII letters, digits, \
         '-', '.', '_' or '~', got {value:?}"
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn command(port: u16, args: &[&str]) -> Reply {
        Conn::connect(port)
            .and_then(|mut conn| conn.command(args))
            .unwrap_or_else(|err| panic!("{args:?} on port {port}: {err}"))
    }

    fn is_down(port: u16) -> bool {
        Conn::connect(port).is_err()
    }

    #[cfg(target_os = "linux")]
    fn process_exists(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    /// A started server answers PING on its loopback port, its output goes
    /// to its log, and dropping it kills the process and removes its dir.
    #[test]
    fn start_answers_ping_and_drop_kills_and_cleans_up() {
        let server = RedisServer::start();
        let port = server.port();
        assert_ne!(port, 6379);
        assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/"));
        assert_eq!(command(port, &["PING"]), Reply::Simple("PONG".into()));
        let log = std::fs::read_to_string(server.log_path()).unwrap();
        assert!(log.contains("Ready to accept connections"), "{log}");

        let pid = server.pid().expect("running");
        let dir = server.dir.path().to_owned();
        drop(server);
        assert!(is_down(port), "still listening on {port} after drop");
        #[cfg(target_os = "linux")]
        assert!(!process_exists(pid), "process {pid} alive after drop");
        let _ = pid;
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    /// Stop kills the server but keeps port and directory; restart brings
    /// it back, empty, on the same port.
    #[test]
    fn stop_and_restart_keep_port_and_dir() {
        let mut server = RedisServer::start();
        let port = server.port();
        let dir = server.dir.path().to_owned();
        let first_pid = server.pid().expect("running");
        assert_eq!(
            command(port, &["SET", "k", "v"]),
            Reply::Simple("OK".into())
        );

        server.stop();
        assert_eq!(server.pid(), None);
        assert!(is_down(port), "still listening on {port} after stop");
        assert!(dir.exists());
        server.stop(); // idempotent

        server.restart();
        assert_eq!(server.port(), port);
        assert!(server.pid().is_some_and(|pid| pid != first_pid));
        assert_eq!(command(port, &["PING"]), Reply::Simple("PONG".into()));
        assert_eq!(command(port, &["GET", "k"]), Reply::Bulk(None));

        // Restarting a running server replaces it.
        let second_pid = server.pid();
        server.restart();
        assert_ne!(server.pid(), second_pid);
        assert_eq!(command(port, &["PING"]), Reply::Simple("PONG".into()));

        let log = std::fs::read_to_string(server.log_path()).unwrap();
        assert_eq!(log.matches("=== limiter-test-redis: starting").count(), 3);
    }

    /// Servers started together get distinct ports.
    #[test]
    fn servers_get_distinct_ports() {
        let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
        let mut ports: Vec<u16> = servers.iter().map(RedisServer::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), servers.len());
    }

    /// With a password, a connection that does not authenticate is refused;
    /// one that does works, also after a restart.
    #[test]
    fn password_server_refuses_unauthenticated_connections() {
        let mut server = RedisServer::start_with_password("limiter", "s3cret-pw");
        let port = server.port();
        assert_eq!(
            server.url(),
            format!("redis://limiter:s3cret-pw@127.0.0.1:{port}/")
        );
        let debug = format!("{server:?}");
        assert!(!debug.contains("s3cret-pw"), "{debug}");

        for _ in 0..2 {
            match command(port, &["PING"]) {
                Reply::Error(e) if e.starts_with("NOAUTH") || e.starts_with("NOPERM") => {}
                other => panic!("PING without AUTH answered {other}"),
            }
            let mut conn = Conn::connect(port).unwrap();
            assert!(matches!(
                conn.command(&["AUTH", "limiter", "wrong"]).unwrap(),
                Reply::Error(e) if e.starts_with("WRONGPASS")
            ));
            assert!(
                matches!(
                    conn.command(&["AUTH", "s3cret-pw"]).unwrap(),
                    Reply::Error(e) if e.starts_with("WRONGPASS")
                ),
                "the default user must be off"
            );
            assert_eq!(
                conn.command(&["AUTH", "limiter", "s3cret-pw"]).unwrap(),
                Reply::Simple("OK".into())
            );
            assert_eq!(
                conn.command(&["PING"]).unwrap(),
                Reply::Simple("PONG".into())
            );
            assert_eq!(
                conn.command(&["SET", "k", "v"]).unwrap(),
                Reply::Simple("OK".into())
            );
            server.restart();
        }
    }

    /// The default user can be the one with the password.
    #[test]
    fn password_for_the_default_user() {
        let server = RedisServer::start_with_password("default", "pw");
        let port = server.port();
        assert!(matches!(
            command(port, &["PING"]),
            Reply::Error(e) if e.starts_with("NOAUTH")
        ));
        let mut conn = Conn::connect(port).unwrap();
        assert_eq!(
            conn.command(&["AUTH", "pw"]).unwrap(),
            Reply::Simple("OK".into())
        );
    }

    #[test]
    #[should_panic(expected = "the password of a test Redis server")]
    fn password_with_a_space_is_refused() {
        let _ = RedisServer::start_with_password("limiter", "two words");
    }

    #[test]
    #[should_panic(expected = "the user of a test Redis server")]
    fn empty_user_is_refused() {
        let _ = RedisServer::start_with_password("", "pw");
    }

    /// A port taken by a listener or by another Redis server is not an
    /// error: the server starts on another port.
    #[test]
    fn taken_port_is_retried_on_another_one() {
        use std::net::TcpListener;
        use std::sync::atomic::{AtomicU16, Ordering};

        static TAKEN: AtomicU16 = AtomicU16::new(0);
        fn taken_first() -> u16 {
            match TAKEN.swap(0, Ordering::SeqCst) {
                0 => free_port(),
                port => port,
            }
        }

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let held = listener.local_addr().unwrap().port();
        TAKEN.store(held, Ordering::SeqCst);
        let server = RedisServer::launch(None, Vec::new(), taken_first);
        assert_ne!(server.port(), held);
        assert_eq!(
            command(server.port(), &["PING"]),
            Reply::Simple("PONG".into())
        );
        let log = std::fs::read_to_string(server.log_path()).unwrap();
        assert!(log.contains(&format!("127.0.0.1:{held} ===")), "{log}");
        drop(listener);

        let other = RedisServer::start();
        TAKEN.store(other.port(), Ordering::SeqCst);
        let server = RedisServer::launch(None, Vec::new(), taken_first);
        assert_ne!(server.port(), other.port());
        assert_ne!(server.pid(), other.pid());
        assert_eq!(
            command(server.port(), &["PING"]),
            Reply::Simple("PONG".into())
        );
    }

    /// A failed start panics with the end of the server's log.
    #[test]
    fn failed_start_panics_with_the_log() {
        let result = std::panic::catch_unwind(|| {
            RedisServer::launch(None, vec!["--no-such-option".into(), "x".into()], free_port)
        });
        let payload = result.expect_err("an unknown option must fail");
        let message = payload
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert!(message.contains("cannot start redis-server"), "{message}");
        assert!(message.contains("exited"), "{message}");
        assert!(message.contains("no-such-option"), "{message}");
        assert!(message.contains("--- last"), "{message}");
    }
}
