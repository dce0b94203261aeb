//! `serve --tls-cert FILE --tls-key FILE`: HTTPS without a proxy in front. SIGHUP reads
//! both files again, so a renewed certificate is taken without a restart; connections
//! already open keep the one they began with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The certificate and key in force, and where they were read from.
#[derive(Debug)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Reads the certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8,
    /// PKCS#1 or SEC1), and checks that they belong together.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls> {
        Ok(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            config: RwLock::new(server_config(cert, key)?),
        })
    }

    /// What a new connection's handshake uses: the certificate in force.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = match self.config.read() {
            Ok(config) => config.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        TlsAcceptor::from(config)
    }

    /// Reads both files again and puts them in force; on an error the ones in force stay.
    pub fn reload(&self) -> Result<()> {
        let fresh = server_config(&self.cert, &self.key)?;
        match self.config.write() {
            Ok(mut in_force) => *in_force = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// "certificate CERT and key KEY", for messages.
    pub fn describe(&self) -> String {
        format!(
            "the TLS certificate {} and key {}",
            self.cert.display(),
            self.key.display()
        )
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| pem_error(e, "no certificate"))
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "the TLS certificate {} holds no certificate (PEM: '-----BEGIN CERTIFICATE-----')",
        cert.display()
    );
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| {
            pem_error(
                e,
                "no private key in it (PEM: '-----BEGIN PRIVATE KEY-----')",
            )
        })
        .with_context(|| format!("reading the TLS key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .with_context(|| {
            format!(
                "the TLS key {} does not go with the certificate {}",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A PEM reading error said in words: `missing` when the file holds none of what was
/// looked for.
fn pem_error(e: rustls_pki_types::pem::Error, missing: &str) -> anyhow::Error {
    match e {
        rustls_pki_types::pem::Error::NoItemsFound => anyhow::anyhow!("{missing}"),
        rustls_pki_types::pem::Error::Io(io) => anyhow::Error::new(io),
        other => anyhow::anyhow!("not PEM: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn a_certificate_and_its_key_load_and_mismatches_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let (other_cert, other_key) = self_signed(dir.path(), "b");
        let said = |e: anyhow::Error| format!("{e:#}");
        let mismatch = said(Tls::load(&cert, &other_key).unwrap_err());
        assert!(
            mismatch.contains("does not go with the certificate") && mismatch.contains("b.key"),
            "{mismatch}"
        );
        let missing = said(Tls::load(&dir.path().join("nowhere.crt"), &key).unwrap_err());
        assert!(missing.contains("nowhere.crt"), "{missing}");
        let swapped = said(Tls::load(&key, &cert).unwrap_err());
        assert!(swapped.contains("holds no certificate"), "{swapped}");
        let no_key = said(Tls::load(&cert, &cert).unwrap_err());
        assert!(
            no_key.contains("no private key in it") && no_key.contains("TLS key"),
            "{no_key}"
        );

        let tls = Tls::load(&cert, &key).unwrap();
        // Renewed in place: the new pair is taken.
        std::fs::copy(&other_cert, &cert).unwrap();
        std::fs::copy(&other_key, &key).unwrap();
        tls.reload().unwrap();
        // A failed reload keeps what is in force.
        std::fs::write(&key, "garbage").unwrap();
        assert!(tls.reload().is_err());
    }
}
