//! The certificates and keys `tls.certificates` names: read, parsed and matched at load.
//!
//! Owns the rule that a config naming a certificate is valid only if the certificate and
//! key files are regular files under the size cap, hold a PEM chain and a PEM private key,
//! the end-entity certificate parses, and the key is the certificate's. `check`, `serve`
//! and a reload all get the loaded pairs from here, so what `check` accepted is what
//! `serve` serves. It does no TLS itself (that is `tls`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::source::{read_regular, MAX_PEM_BYTES};

/// Which file of a pair a problem concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairFile {
    Cert,
    Key,
}

/// Load one certificate chain and its private key; the error says which file and why.
pub fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, (PairFile, String)> {
    let cert_pem =
        read_regular(cert, MAX_PEM_BYTES).map_err(|e| (PairFile::Cert, e.to_string()))?;
    let key_pem = read_regular(key, MAX_PEM_BYTES).map_err(|e| (PairFile::Key, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            (
                PairFile::Cert,
                format!("{}: not a PEM certificate chain ({e})", cert.display()),
            )
        })?;
    let Some(end_entity) = chain.first() else {
        return Err((
            PairFile::Cert,
            format!("{}: no certificate in the file", cert.display()),
        ));
    };
    webpki::EndEntityCert::try_from(end_entity).map_err(|e| {
        (
            PairFile::Cert,
            format!("{}: the certificate does not parse ({e})", cert.display()),
        )
    })?;
    // The key's text never reaches a message: only that it is not a key.
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        (
            PairFile::Key,
            format!("{}: no PEM private key in the file", key.display()),
        )
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, private, &provider)
        .map(Arc::new)
        .map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => {
                    format!(
                        "{}: the key does not match the certificate {}",
                        key.display(),
                        cert.display()
                    )
                }
                _ => format!("{}: the key is not usable ({e})", key.display()),
            };
            (PairFile::Key, why)
        })
}
