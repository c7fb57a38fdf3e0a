//! Development certificates: a private CA, a gateway certificate for loopback, and one client
//! certificate per recipient, made with rcgen (no OpenSSL).
//!
//! For `need-to-know certs dev DIR` and the TLS tests. Production certificates come from the
//! housing provider's own CA; nothing here is meant for them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

use crate::identity::sha256_hex;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot make a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A certificate authority that can issue leaf certificates.
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// One issued certificate and its key, PEM-encoded.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

/// When a certificate is valid, as (year, month, day) pairs; tests use a past window to
/// make an expired certificate.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: (i32, u8, u8),
    pub not_after: (i32, u8, u8),
}

impl Default for Validity {
    fn default() -> Self {
        Validity {
            not_before: (2025, 1, 1),
            not_after: (2035, 1, 1),
        }
    }
}

// === impl Authority ===

impl Authority {
    /// A new self-signed CA named `name`.
    ///
    /// # Errors
    ///
    /// When key generation or signing fails.
    pub fn new(name: &str) -> Result<Authority, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = distinguished(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, Validity::default());
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Authority { issuer })
    }

    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn cert_der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    ///
    /// # Errors
    ///
    /// When a name is not a valid SAN, or signing fails.
    pub fn server(&self, names: &[&str]) -> Result<Issued, Error> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        params.distinguished_name = distinguished(names.first().map_or("gateway", |n| n.as_str()));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params, Validity::default());
        self.issue(params)
    }

    /// A client certificate with one DNS SAN, as a recipient's integration would present.
    ///
    /// # Errors
    ///
    /// When the name is not a valid DNS name, or signing fails.
    pub fn client(&self, dns_name: &str, validity: Validity) -> Result<Issued, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = vec![SanType::DnsName(dns_name.try_into()?)];
        params.distinguished_name = distinguished(dns_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params, validity);
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Result<Issued, Error> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        })
    }
}

fn distinguished(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "need-to-know development");
    dn
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    let (y, m, d) = validity.not_before;
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = validity.not_after;
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

// === `certs dev` ===

/// What `certs dev` wrote, for the command to print.
pub struct DevSet {
    pub files: Vec<PathBuf>,
    /// (recipient id, SAN, cert_sha256) per client certificate.
    pub clients: Vec<(String, String, String)>,
}

/// The DNS SAN a development client certificate carries for recipient `id`.
pub fn dev_san(id: &str) -> String {
    format!("{id}.recipients.need-to-know.test")
}

/// Writes a development CA, a gateway certificate for 127.0.0.1 and localhost, an upstream
/// CA and certificate, and one client certificate per recipient id into `dir`.
///
/// # Errors
///
/// When a certificate cannot be made or a file cannot be written.
pub fn write_dev_set(dir: &Path, recipients: &[String]) -> Result<DevSet, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    let mut write = |name: &str, text: &str, secret: bool| -> Result<(), Error> {
        let path = dir.join(name);
        write_file(&path, text, secret)?;
        files.push(path);
        Ok(())
    };
    let gateway_ca = Authority::new("need-to-know development gateway CA")?;
    write("gateway-ca.crt", &gateway_ca.cert_pem(), false)?;
    let gateway = gateway_ca.server(&["localhost", "127.0.0.1"])?;
    write(
        "gateway.crt",
        &format!("{}{}", gateway.cert_pem, gateway_ca.cert_pem()),
        false,
    )?;
    write("gateway.key", &gateway.key_pem, true)?;

    let recipients_ca = Authority::new("need-to-know development recipients CA")?;
    write("recipients-ca.crt", &recipients_ca.cert_pem(), false)?;
    let mut clients = Vec::new();
    for id in recipients {
        let san = dev_san(id);
        let issued = recipients_ca.client(&san, Validity::default())?;
        write(&format!("{id}.crt"), &issued.cert_pem, false)?;
        write(&format!("{id}.key"), &issued.key_pem, true)?;
        clients.push((id.clone(), san, sha256_hex(&issued.der)));
    }
    Ok(DevSet { files, clients })
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), Error> {
    let fail = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mode = if secret { 0o600 } else { 0o644 };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .map_err(fail)?;
        file.write_all(text.as_bytes()).map_err(fail)
    }
    #[cfg(not(unix))]
    {
        let _ = secret;
        std::fs::write(path, text).map_err(fail)
    }
}
