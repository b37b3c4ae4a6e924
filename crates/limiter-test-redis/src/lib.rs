//! Real `redis-server` processes for the tests of **llm-limiter**.
//!
//! This crate is a dev-dependency of the crates whose tests talk to Redis.
//! It starts `redis-server` (found on `PATH`) on a free loopback port, in a
//! temporary directory of its own, and kills it when the handle is dropped:
//!
//! - [`RedisServer::start`]: a standalone server without authentication;
//! - [`RedisServer::start_with_password`]: a standalone server whose only
//!   enabled user is the one given, with its password in
//!   [`url`](RedisServer::url);
//! - [`TlsServer::start`]: a server that also listens with TLS on a port of
//!   its own, with a CA, server and client certificates made for it by the
//!   OS's `openssl` ([`TlsFiles`]), and a second, unrelated CA for tests of
//!   an untrusted server;
//! - [`RedisCluster::start`]: a cluster of masters, created with
//!   `redis-cli --cluster create` and waited for until every node reports
//!   `cluster_state:ok`.
//!
//! [`RedisServer::shared`] and [`RedisCluster::shared`] give every test of
//! one test binary the same server (or cluster), started on first use and
//! killed when the test process exits, so that a binary whose tests use
//! keys of their own starts one server instead of one per test.
//!
//! A server can be [stopped](RedisServer::stop) and
//! [restarted](RedisServer::restart) on the same port, to test lost
//! connections and reconnection.
//!
//! Servers listen on 127.0.0.1 only, never on the default port 6379, and
//! persist nothing (`--save ""`, `--appendonly no`). Their output goes to a
//! log file in their directory ([`RedisServer::log_path`]), whose last lines
//! are part of every panic message of this crate.
//!
//! Tests never skip when Redis is missing: [`redis_server_path`] panics and
//! says how to install it (`./scripts/test` does).
//!
//! Only the standard library and `tempfile` are used: the readiness checks
//! speak just enough RESP over a plain [`TcpStream`](std::net::TcpStream).
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//!
//! use limiter_test_redis::RedisServer;
//!
//! let server = RedisServer::start();
//! let mut conn = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
//! conn.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
//! let mut reply = [0; 7];
//! conn.read_exact(&mut reply).unwrap();
//! assert_eq!(&reply, b"+PONG\r\n");
//! // `server.url()` is `redis://127.0.0.1:PORT/`, for a client crate.
//! drop(server); // kills redis-server and removes its directory
//! ```

mod cluster;
mod log;
mod path;
mod port;
mod resp;
mod server;
mod shared;
mod tls;

pub use cluster::RedisCluster;
pub use path::redis_server_path;
pub use port::free_port;
pub use server::RedisServer;
pub use tls::{TlsFiles, TlsServer};
