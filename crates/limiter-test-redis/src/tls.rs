//! A `redis-server` that speaks TLS, with certificates made at test time.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::port::free_port;
use crate::server::RedisServer;

/// Certificates made for one test server by `openssl` (found on `PATH`):
/// a CA, a server certificate it signed for `127.0.0.1` and `localhost`, a
/// client certificate it signed, and a second CA that signed nothing of the
/// server's. Every file is PEM, in a temporary directory removed on drop.
#[derive(Debug)]
pub struct TlsFiles {
    dir: TempDir,
}

impl TlsFiles {
    /// Makes the certificates (RSA 2048, valid for a day).
    ///
    /// # Panics
    ///
    /// When `openssl` is missing or fails; the message holds its output.
    pub fn make() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("limiter-test-redis-tls-")
            .tempdir()
            .unwrap_or_else(|err| panic!("cannot create a temp dir for certificates: {err}"));
        let files = TlsFiles { dir };
        for ca in ["ca", "other-ca"] {
            files.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                &format!("/CN=limiter-test-redis {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ]);
        }
        fs::write(
            files.path("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap_or_else(|err| panic!("cannot write server.ext: {err}"));
        fs::write(files.path("client.ext"), "extendedKeyUsage=clientAuth\n")
            .unwrap_or_else(|err| panic!("cannot write client.ext: {err}"));
        for (name, subject) in [
            ("server", "/CN=127.0.0.1"),
            ("client", "/CN=limiter-test-client"),
        ] {
            files.openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ]);
            files.openssl(&[
                "x509",
                "-req",
                "-days",
                "1",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.crt"),
            ]);
        }
        files
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| {
                panic!("cannot run openssl (install it, as ./scripts/test does): {err}")
            });
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The path of one of the files (`ca.crt`, `server.key`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap_or_else(|err| panic!("cannot read {name}: {err}"))
    }

    /// The CA that signed the server's and the client's certificates.
    pub fn ca_pem(&self) -> Vec<u8> {
        self.read("ca.crt")
    }

    /// A CA that signed neither.
    pub fn other_ca_pem(&self) -> Vec<u8> {
        self.read("other-ca.crt")
    }

    /// The client's certificate.
    pub fn client_cert_pem(&self) -> Vec<u8> {
        self.read("client.crt")
    }

    /// The client's private key.
    pub fn client_key_pem(&self) -> Vec<u8> {
        self.read("client.key")
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A standalone server that listens with TLS on [`tls_port`](Self::tls_port)
/// (and in plain text on the server's own port, which the readiness checks
/// use), killed on drop like [`RedisServer`].
#[derive(Debug)]
pub struct TlsServer {
    server: RedisServer,
    tls_port: u16,
    files: TlsFiles,
}

impl TlsServer {
    /// Starts a server with new certificates. With `require_client_cert`,
    /// a TLS client without a certificate signed by the CA is refused
    /// (`tls-auth-clients yes`); otherwise none is asked for.
    ///
    /// # Panics
    ///
    /// As [`TlsFiles::make`] and [`RedisServer::start`].
    pub fn start(require_client_cert: bool) -> Self {
        let files = TlsFiles::make();
        let tls_port = free_port();
        let file = |name: &str| files.dir().join(name).display().to_string();
        let args = vec![
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            file("server.crt"),
            "--tls-key-file".to_owned(),
            file("server.key"),
            "--tls-ca-cert-file".to_owned(),
            file("ca.crt"),
            "--tls-auth-clients".to_owned(),
            if require_client_cert { "yes" } else { "no" }.to_owned(),
        ];
        let server = RedisServer::start_with_args(args);
        TlsServer {
            server,
            tls_port,
            files,
        }
    }

    /// The TLS port, on 127.0.0.1.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// `rediss://127.0.0.1:TLS_PORT/`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.tls_port)
    }

    /// The certificates.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The server (its plain-text port, its log).
    pub fn server(&self) -> &RedisServer {
        &self.server
    }
}
