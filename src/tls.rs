//! TLS with rustls (ring provider): the gateway's server config with optional client
//! certificates, the identity a verified client certificate carries, and the client config
//! for an https upstream behind a private CA.
//!
//! Every file problem is reported as "which file, and why" (missing, unreadable, no PEM
//! block, key not matching the certificate, expired), never as a panic or a rustls debug
//! dump, so `check` and `serve` can print it and stop.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};

use crate::config::{ClientAuth, Tls};

/// A certificate or key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("tls configuration: {0}")]
    Config(String),
}

fn file_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// What a verified client certificate says about its holder.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// SHA-256 of the leaf certificate's DER, as `cert_sha256` is written.
    pub cert_sha256: [u8; 32],
    /// The DNS names in its subjectAltName, lower-cased.
    pub dns_names: Vec<String>,
}

/// Hand-written: certificate details are not for logs.
impl fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerIdentity").finish_non_exhaustive()
    }
}

impl PeerIdentity {
    /// Reads the identity from a leaf certificate that rustls has already verified.
    pub fn from_der(der: &[u8]) -> PeerIdentity {
        let dns_names = x509_parser::parse_x509_certificate(der)
            .ok()
            .and_then(|(_, cert)| {
                cert.subject_alternative_name().ok().flatten().map(|san| {
                    san.value
                        .general_names
                        .iter()
                        .filter_map(|name| match name {
                            x509_parser::extensions::GeneralName::DNSName(n) => {
                                Some(n.to_ascii_lowercase())
                            }
                            _ => None,
                        })
                        .collect()
                })
            })
            .unwrap_or_default();
        PeerIdentity {
            cert_sha256: Sha256::digest(der).into(),
            dns_names,
        }
    }

    /// The identity of the client on a finished handshake, if it presented a certificate.
    pub fn of(connection: &rustls::ServerConnection) -> Option<PeerIdentity> {
        connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| PeerIdentity::from_der(leaf.as_ref()))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server config for `[server.tls]`: TLS 1.2 and 1.3, HTTP/2 or HTTP/1.1 by ALPN, and client
/// certificates verified against `client_ca` (with CRLs) when it is set.
///
/// # Errors
///
/// Naming the file at fault and why.
pub fn server_config(tls: &Tls) -> Result<Arc<ServerConfig>, Error> {
    let chain = load_certs(&tls.cert)?;
    let key = load_key(&tls.key)?;
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|_| {
            file_error(
                &tls.key,
                "not a private key rustls can use (RSA, ECDSA or Ed25519)",
            )
        })?;
    rustls::sign::CertifiedKey::new(chain.clone(), signing_key)
        .keys_match()
        .map_err(|_| {
            file_error(
                &tls.key,
                format!("does not match the certificate in {}", tls.cert.display()),
            )
        })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| Error::Config(e.to_string()))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = Arc::new(load_roots(ca)?);
            let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            if let Some(crl) = &tls.crl {
                verifier = verifier.with_crls(load_crls(crl)?);
            }
            if tls.client_auth == ClientAuth::Optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| Error::Config(format!("client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| file_error(&tls.cert, format!("cannot be used with its key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client config for an https upstream, and for the PostgreSQL ledger's `verify-full`:
/// `ca` as the only root when given (a private CA), else the platform's roots.
///
/// # Errors
///
/// When the CA file is unusable, or no platform root could be loaded.
pub fn upstream_client_config(ca: Option<&Path>) -> Result<ClientConfig, Error> {
    let roots = match ca {
        Some(ca) => load_roots(ca)?,
        None => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs_load();
            for cert in found {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(Error::Config(
                    "no platform root certificates found; set [upstream] ca".to_string(),
                ));
            }
            roots
        }
    };
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| Error::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// A client config that trusts no server, for an http upstream that never uses it.
///
/// # Errors
///
/// Only if the provider refuses the protocol versions, which ring's does not.
pub fn untrusting_client_config() -> Result<ClientConfig, Error> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| Error::Config(e.to_string()))?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

/// TLS that accepts any server certificate: the PostgreSQL ledger's `sslmode = "require"`,
/// as libpq means it. It encrypts, and still checks that the server holds the key of the
/// certificate it sent, but not who that is, so an active attacker on the path reads
/// everything; `check` and `serve` warn wherever it is configured.
///
/// # Errors
///
/// Only if the provider refuses the protocol versions, which ring's does not.
pub fn unauthenticated_client_config() -> Result<ClientConfig, Error> {
    let provider = provider();
    let verifier = Arc::new(AnyServer(provider.clone()));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| Error::Config(e.to_string()))?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    config.dangerous().set_certificate_verifier(verifier);
    Ok(config)
}

/// See [`unauthenticated_client_config`]: no chain or name check, handshake signatures checked.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn rustls_native_certs_load() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

fn read_pem_text(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| file_error(path, format!("cannot read: {e}")))
}

/// The PEM chain in `path`, each certificate checked to be within its validity period.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = read_pem_text(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| file_error(path, "is not a valid PEM certificate file"))?;
    if certs.is_empty() {
        return Err(file_error(path, "holds no PEM certificate"));
    }
    for cert in &certs {
        check_validity(path, cert)?;
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let bytes = read_pem_text(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| file_error(path, "holds no PEM private key"))
}

fn load_roots(path: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| file_error(path, format!("is not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    let bytes = read_pem_text(path)?;
    let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| file_error(path, "is not a valid PEM CRL file"))?;
    if crls.is_empty() {
        return Err(file_error(path, "holds no PEM CRL"));
    }
    Ok(crls)
}

fn check_validity(path: &Path, cert: &CertificateDer<'_>) -> Result<(), Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| file_error(path, "holds a certificate that cannot be parsed"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let validity = parsed.validity();
    if validity.not_after.timestamp() < now {
        return Err(file_error(
            path,
            format!("certificate expired on {}", validity.not_after),
        ));
    }
    if validity.not_before.timestamp() > now {
        return Err(file_error(
            path,
            format!("certificate is not valid until {}", validity.not_before),
        ));
    }
    Ok(())
}

/// The server config in use, swapped whole on reload so that each new connection uses the
/// latest good one and a failed reload changes nothing.
pub struct Reloadable {
    settings: Tls,
    current: RwLock<Arc<ServerConfig>>,
}

impl fmt::Debug for Reloadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloadable")
            .field("cert", &self.settings.cert)
            .finish_non_exhaustive()
    }
}

impl Reloadable {
    /// # Errors
    ///
    /// As [`server_config`].
    pub fn new(settings: Tls) -> Result<Reloadable, Error> {
        let config = server_config(&settings)?;
        Ok(Reloadable {
            settings,
            current: RwLock::new(config),
        })
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again; on any problem the old config stays.
    ///
    /// # Errors
    ///
    /// As [`server_config`]; nothing has changed then.
    pub fn reload(&self) -> Result<(), Error> {
        let fresh = server_config(&self.settings)?;
        match self.current.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }
}
