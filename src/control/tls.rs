//! TLS for the TCP control API, on rustls with ring: the listener's acceptor (from
//! `[inet_http_server] tls_cert_file`/`tls_key_file`) and the clients' trust (a CA: filc's
//! `--ca-file`, `[cluster] ca_file` for fild to fild). The PEM files were read and checked
//! by the config loader; this only builds rustls' configurations from what it kept.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{CaBundle, ServerTls};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor of a TLS listener: this chain and key, TLS 1.2 and 1.3, HTTP/1.1, no client
/// certificates (clients log in with Basic auth, inside the TLS).
pub fn acceptor(t: &ServerTls) -> Result<TlsAcceptor, rustls::Error> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(t.chain.clone(), t.key.clone_key())?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// What a client trusts: the certificates of one CA file, and nothing else (no system roots).
#[derive(Clone)]
pub struct Trust {
    connector: TlsConnector,
    /// The CA file, for messages.
    pub ca_file: std::path::PathBuf,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trust({})", self.ca_file.display())
    }
}

impl Trust {
    /// Trust the CA of `ca`.
    pub fn of(ca: &CaBundle) -> Result<Trust, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for c in &ca.certs {
            roots.add(c.clone())?;
        }
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Trust {
            connector: TlsConnector::from(Arc::new(cfg)),
            ca_file: ca.file.clone(),
        })
    }

    /// TLS over `stream` to `host_port`, its certificate verified for the host (a DNS name
    /// or an IP address, either as a SAN).
    pub async fn connect(
        &self,
        host_port: &str,
        stream: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let name = server_name(host_port)?;
        self.connector
            .connect(name, stream)
            .await
            .map_err(|e| describe(&e))
    }
}

/// The host of `host:port` (`[::1]:9001` too) as the name its certificate must carry.
pub fn server_name(host_port: &str) -> Result<ServerName<'static>, String> {
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("'{host}' is neither a DNS name nor an IP address"))
}

/// What a failed handshake came to: rustls' own error when there is one (an unknown issuer,
/// a name the certificate does not carry, a peer that speaks no TLS), else the I/O error.
pub fn describe(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(r) => r.to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_host_of_host_port() {
        assert!(matches!(
            server_name("127.0.0.1:9001").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:9001").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert_eq!(
            server_name("h1.example:9001").unwrap(),
            ServerName::try_from("h1.example").unwrap()
        );
        assert!(server_name("bad name:1").is_err());
    }
}
