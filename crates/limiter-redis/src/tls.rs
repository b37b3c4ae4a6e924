//! TLS settings both builders share (feature `rustls`), and how a TLS
//! failure reads as a store error.

use std::fmt;

use limiter_core::{Error, Result};

/// What a builder was told about TLS, beyond the `rediss://` scheme that
/// turns it on: a CA to trust instead of the system's, and a client
/// identity for servers that ask for one (`tls-auth-clients yes`).
#[derive(Clone, Default)]
pub(crate) struct TlsSettings {
    /// PEM certificates of the CAs to trust.
    pub(crate) root_ca_pem: Option<Vec<u8>>,
    /// PEM certificate chain and PEM private key of this client.
    pub(crate) client_identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

/// Keys are secrets: `Debug` says what is set, not what it is.
impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("root_ca", &self.root_ca_pem.is_some())
            .field("client_identity", &self.client_identity_pem.is_some())
            .finish()
    }
}

type Certs = Vec<rustls::pki_types::CertificateDer<'static>>;

fn bad(field: &str, reason: String) -> Error {
    Error::InvalidConfig {
        field: field.into(),
        reason,
    }
}

/// The certificates of a PEM text, at least one.
fn parse_certs(field: &str, pem: &[u8]) -> Result<Certs> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let certs: Certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(field, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad(field, "no certificate in the PEM text".into()));
    }
    Ok(certs)
}

/// The private key of a PEM text.
fn parse_key(field: &str, pem: &[u8]) -> Result<rustls::pki_types::PrivateKeyDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| bad(field, format!("not a PEM private key: {e:?}")))
}

impl TlsSettings {
    /// Whether anything was set.
    pub(crate) fn is_set(&self) -> bool {
        self.root_ca_pem.is_some() || self.client_identity_pem.is_some()
    }

    /// Refuses PEM texts that hold no certificate or key, before anything
    /// connects (a client library might otherwise ignore them).
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(pem) = &self.root_ca_pem {
            parse_certs("tls_root_ca_pem", pem)?;
        }
        if let Some((chain, key)) = &self.client_identity_pem {
            parse_certs("tls_client_identity_pem", chain)?;
            parse_key("tls_client_identity_pem", key)?;
        }
        Ok(())
    }

    /// A rustls client configuration: the given CA (else the system's
    /// roots), and the client identity if given.
    #[cfg(feature = "fred")]
    pub(crate) fn rustls_config(&self) -> Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.root_ca_pem {
            Some(pem) => {
                for cert in parse_certs("tls_root_ca_pem", pem)? {
                    roots
                        .add(cert)
                        .map_err(|e| bad("tls_root_ca_pem", format!("not a usable CA: {e}")))?;
                }
            }
            None => {
                // The system's roots; one that rustls cannot use is
                // skipped, as browsers do.
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        match &self.client_identity_pem {
            None => Ok(builder.with_no_client_auth()),
            Some((chain, key)) => builder
                .with_client_auth_cert(
                    parse_certs("tls_client_identity_pem", chain)?,
                    parse_key("tls_client_identity_pem", key)?,
                )
                .map_err(|e| bad("tls_client_identity_pem", format!("unusable: {e}"))),
        }
    }
}

/// Whether `e`, or an error it wraps, is a TLS failure: the server's
/// certificate not trusted, a client certificate refused, the handshake
/// failed. Such a fault is not cured by retrying. Client libraries wrap
/// rustls's errors in their own, so the texts are read too.
#[cfg(feature = "redis-rs")]
pub(crate) fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<rustls::Error>() || names_tls_failure(&err.to_string()) {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if inner.is::<rustls::Error>() || names_tls_failure(&inner.to_string()) {
                    return true;
                }
            }
        }
        cur = err.source();
    }
    false
}

/// Whether an error's text tells of a TLS failure.
pub(crate) fn names_tls_failure(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("certificate") || t.contains("handshake") || t.contains("tls alert")
}

/// A store error for a TLS failure at connection.
#[cfg(feature = "redis-rs")]
pub(crate) fn tls_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::store_from(format!("{}: {e}", crate::core::TLS_FAILED), false, e)
}
