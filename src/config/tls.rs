//! The PEM files the TCP control API's TLS names, read and checked when a configuration is
//! loaded: `[inet_http_server] tls_cert_file`/`tls_key_file` (a certificate chain and the
//! private key of its first certificate) and `[cluster] ca_file` (the CA that signed the
//! other hosts' certificates). What is checked here is what is served: the model keeps the
//! DER, never the paths alone. The PEM parsing is rustls-pki-types'.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::model::{CaBundle, ServerTls};
use super::values::Problem;

/// Why a PEM file does not parse, in words (pki-types' own text shows bytes as numbers).
fn pem_problem(path: &Path, what: &str, e: &pem::Error) -> Problem {
    let why = match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a PEM section has no end line ({})",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "malformed PEM BEGIN line {:?}",
            String::from_utf8_lossy(line)
        ),
        pem::Error::Base64Decode(e) => format!("a PEM section is not valid base64 ({e})"),
        pem::Error::NoItemsFound => format!("no {what} in it"),
        pem::Error::SectionTooLarge => "a PEM section is larger than 256 MB".to_string(),
        other => other.to_string(),
    };
    Problem::new(format!("{}: {why}", path.display()))
        .hint(format!("give a PEM file holding a {what}"))
}

fn read(path: &Path) -> Result<Vec<u8>, Problem> {
    std::fs::read(path).map_err(|e| Problem::new(format!("cannot read {}: {e}", path.display())))
}

/// Every certificate of PEM text `bytes` (read from `path`), in order; at least one.
pub(crate) fn certs_from(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, Problem> {
    let what = "certificate (-----BEGIN CERTIFICATE-----)";
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_problem(path, what, &e))?;
    if certs.is_empty() {
        return Err(pem_problem(path, what, &pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// The first private key of PEM text `bytes` (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn key_from(path: &Path, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, Problem> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| {
        pem_problem(
            path,
            "private key (-----BEGIN PRIVATE KEY-----, or its RSA or EC form)",
            &e,
        )
    })
}

/// The certificates of CA file `path`, each one a trust anchor rustls accepts.
pub(crate) fn ca(path: &Path) -> Result<CaBundle, Problem> {
    let certs = certs_from(path, &read(path)?)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in &certs {
        roots.add(c.clone()).map_err(|e| {
            Problem::new(format!(
                "{}: a certificate in it cannot be a trust anchor: {e}",
                path.display()
            ))
        })?;
    }
    Ok(CaBundle {
        file: path.to_path_buf(),
        certs,
    })
}

/// The chain of `cert_file` with the key of `key_file`, checked the way the listener will use
/// them: the key is one rustls signs with, and it is the first certificate's. An error names
/// the file it is about and says which of the two keys it belongs to.
pub(crate) fn server(
    cert_file: &Path,
    key_file: &Path,
) -> Result<ServerTls, (&'static str, Problem)> {
    const CERT: &str = "tls_cert_file";
    const KEY: &str = "tls_key_file";
    let chain = read(cert_file)
        .and_then(|b| certs_from(cert_file, &b))
        .map_err(|p| (CERT, p))?;
    let key = read(key_file)
        .and_then(|b| key_from(key_file, &b))
        .map_err(|p| (KEY, p))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    if let Err(e) = rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider)
    {
        let p = Problem::new(format!(
            "{} does not go with {}: {e}",
            key_file.display(),
            cert_file.display()
        ))
        .hint("the key must be the private key of the chain's first certificate");
        return Err((KEY, p));
    }
    Ok(ServerTls {
        cert_file: cert_file.to_path_buf(),
        key_file: key_file.to_path_buf(),
        chain,
        key: Arc::new(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_empty_text_are_problems_not_panics() {
        let p = Path::new("/x.pem");
        let cases: &[&[u8]] = &[
            b"",
            b"hello",
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n",
            b"-----BEGIN CERTIFICATE\n",
            &[0xff, 0xfe, 0, 1, 2],
        ];
        for c in cases {
            let e = certs_from(p, c).unwrap_err();
            assert!(e.message.starts_with("/x.pem: "), "{}", e.message);
            assert!(key_from(p, c).is_err());
        }
        // Valid base64 of something that is no certificate parses as PEM; rustls' own checks
        // (the trust store, the key match) refuse it later.
        let odd = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(certs_from(p, odd).unwrap().len(), 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_readers() {
        // A small deterministic property check (the fuzz target `pem` runs the same at length):
        // random splices of PEM markers, base64 and noise.
        let pieces: &[&[u8]] = &[
            b"-----BEGIN CERTIFICATE-----\n",
            b"-----END CERTIFICATE-----\n",
            b"-----BEGIN PRIVATE KEY-----\n",
            b"-----END PRIVATE KEY-----\n",
            b"-----BEGIN EC PRIVATE KEY-----",
            b"MIIB",
            b"====",
            b"\r\n",
            b"\n",
            b"-----",
            &[0x80, 0xff],
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            let mut text = Vec::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 8) as usize;
            for i in 0..n {
                let k = ((x >> (i * 5)) % pieces.len() as u64) as usize;
                text.extend_from_slice(pieces[k]);
            }
            let _ = certs_from(Path::new("f"), &text);
            let _ = key_from(Path::new("f"), &text);
        }
    }
}
