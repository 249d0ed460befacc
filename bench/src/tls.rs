//! A TLS terminator on 127.0.0.1 in front of the local DynamoDB, so that a function's first
//! DynamoDB request pays a TLS handshake, as it does on AWS.
//!
//! A test CA and a server certificate for `localhost` and `127.0.0.1` are made at start (rcgen),
//! the CA written as PEM to a temp file for the function's `SSL_CERT_FILE` (rustls-native-certs,
//! which the AWS SDK's default HTTPS client loads its roots with, reads only that file when it is
//! set). Each accepted connection is a TLS 1.2/1.3 server (tokio-rustls, aws-lc-rs) speaking
//! HTTP/1.1 with keep-alive (hyper), as DynamoDB does; each request is forwarded on a plain
//! connection of its own to the local DynamoDB, and its answer returned without the local
//! server's `Connection: close` (moto's server closes every connection after one answer, which
//! would make a connection opened in advance useless). The terminator stops, and the CA file is
//! removed, when it is dropped.

use std::{
    convert::Infallible,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{
    Request, Response, StatusCode, Version,
    body::Incoming,
    client::conn::http1 as client_http1,
    header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING},
    server::conn::http1 as server_http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The `host:port` of a plain-HTTP endpoint URL (`http://127.0.0.1:8000` or with a path); `None`
/// for an https URL or one without a host.
pub fn upstream_address(endpoint: &str) -> Option<String> {
    let rest = endpoint.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    if authority.is_empty() {
        return None;
    }
    Some(if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    })
}

/// A CA certificate (PEM) and a server certificate it signed for `localhost` and `127.0.0.1`,
/// with the server's private key.
pub struct Certificates {
    /// The CA's certificate, PEM: what the client trusts.
    pub ca_pem: String,
    /// The server's certificate.
    pub server: CertificateDer<'static>,
    /// The server's private key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").finish_non_exhaustive()
    }
}

impl Certificates {
    /// Makes a new CA (ECDSA P-256) and a server certificate signed by it.
    pub fn generate() -> Result<Self, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "lambda-bench test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.use_authority_key_identifier_extension = true;
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            server: server_cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        })
    }

    /// A TLS server configuration that presents the server certificate.
    pub fn server_config(&self) -> Result<ServerConfig, Error> {
        Ok(
            ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(vec![self.server.clone()], self.key.clone_key())?,
        )
    }
}

/// What a terminator has seen so far.
#[derive(Debug, Default)]
struct Counts {
    handshakes: AtomicU64,
    refused: AtomicU64,
    cut_off: AtomicU64,
    requests: AtomicU64,
}

/// A running terminator.
#[derive(Debug)]
pub struct Terminator {
    port: u16,
    ca_file: PathBuf,
    counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl Terminator {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (`host:port`, plain HTTP).
    pub async fn start(upstream: &str) -> Result<Self, Error> {
        // Also seeds aws-lc's random generator in this process (its first use costs tens of ms),
        // so that no measured handshake pays for it on the terminator's side.
        let certificates = Certificates::generate()?;
        let acceptor = TlsAcceptor::from(Arc::new(certificates.server_config()?));
        let ca_file = std::env::temp_dir().join(format!(
            "lambda-bench-ca-{}.pem",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&ca_file, &certificates.ca_pem)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counts = Arc::new(Counts::default());
        let seen = Arc::clone(&counts);
        let upstream: Arc<str> = Arc::from(upstream);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, upstream, seen) =
                    (acceptor.clone(), Arc::clone(&upstream), Arc::clone(&seen));
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    let tls = match acceptor.accept(client).await {
                        Ok(tls) => tls,
                        Err(err) => {
                            // A TLS error (an alert: the client does not trust the CA, say) is
                            // InvalidData; anything else is the client going away mid-handshake.
                            let count = if err.kind() == std::io::ErrorKind::InvalidData {
                                &seen.refused
                            } else {
                                &seen.cut_off
                            };
                            count.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    };
                    seen.handshakes.fetch_add(1, Ordering::Relaxed);
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (upstream, seen) = (Arc::clone(&upstream), Arc::clone(&seen));
                        async move {
                            seen.requests.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, Infallible>(forward(&upstream, request).await.unwrap_or_else(
                                |err| {
                                    let mut response = Response::new(Full::new(Bytes::from(
                                        format!("lambda-bench TLS terminator: {err}"),
                                    )));
                                    *response.status_mut() = StatusCode::BAD_GATEWAY;
                                    response
                                },
                            ))
                        }
                    });
                    let _ = server_http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Self {
            port,
            ca_file,
            counts,
            task,
        })
    }

    /// The endpoint a function is given (`AWS_ENDPOINT_URL_DYNAMODB`).
    pub fn endpoint(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// The CA's PEM file (`SSL_CERT_FILE`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// TLS handshakes completed so far (each a connection a function opened).
    pub fn handshakes(&self) -> u64 {
        self.counts.handshakes.load(Ordering::Relaxed)
    }

    /// Handshakes that failed with a TLS error (a client that does not trust the CA, say).
    pub fn refused(&self) -> u64 {
        self.counts.refused.load(Ordering::Relaxed)
    }

    /// Handshakes the client left unfinished (a process ended while it was opening a connection).
    pub fn cut_off(&self) -> u64 {
        self.counts.cut_off.load(Ordering::Relaxed)
    }

    /// HTTP requests forwarded so far.
    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::Relaxed)
    }
}

/// Forwards one request to `upstream` on a connection of its own, and returns its answer as an
/// HTTP/1.1 response the client may keep its connection open after.
async fn forward(
    upstream: &str,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let stream = TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = client_http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    for hop_by_hop in [CONNECTION, TRANSFER_ENCODING, CONTENT_LENGTH] {
        parts.headers.remove(hop_by_hop);
    }
    parts.headers.remove("keep-alive");
    parts.version = Version::HTTP_11;
    Ok(Response::from_parts(parts, Full::new(body)))
}

impl Drop for Terminator {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

#[cfg(test)]
mod tests {
    use test_support::http_server::{self, respond};
    use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::{
        TlsConnector,
        rustls::{
            ClientConfig, RootCertStore,
            pki_types::{ServerName, pem::PemObject as _},
        },
    };

    use super::*;

    #[test]
    fn the_upstream_is_the_authority_of_a_plain_http_url() {
        assert_eq!(
            upstream_address("http://127.0.0.1:8000").as_deref(),
            Some("127.0.0.1:8000")
        );
        assert_eq!(
            upstream_address("http://localhost:9/x/y").as_deref(),
            Some("localhost:9")
        );
        assert_eq!(upstream_address("http://db").as_deref(), Some("db:80"));
        assert_eq!(upstream_address("https://127.0.0.1:8000"), None);
        assert_eq!(upstream_address("http://"), None);
    }

    /// One HTTP/1.1 response off `stream`: the head, then `content-length` bytes of body.
    async fn read_response(stream: &mut (impl AsyncRead + Unpin)) -> Result<String, Error> {
        let mut data = Vec::new();
        let mut byte = [0_u8; 1];
        while !data.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await?;
            data.push(byte[0]);
        }
        let head = String::from_utf8(data)?;
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .ok_or("no content-length")?;
        let mut body = vec![0_u8; length];
        stream.read_exact(&mut body).await?;
        Ok(format!("{head}{}", String::from_utf8(body)?))
    }

    fn client(roots: RootCertStore) -> Result<TlsConnector, Error> {
        Ok(TlsConnector::from(Arc::new(
            ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )))
    }

    /// A client that trusts only the CA file, as the functions' SDK does with `SSL_CERT_FILE`,
    /// gets through to the upstream, twice on one connection although the upstream closes its
    /// own after each answer.
    #[tokio::test]
    async fn a_client_trusting_the_ca_file_keeps_its_connection() -> Result<(), Error> {
        let upstream = http_server::serve(|request| {
            Box::pin(async move {
                let mut response = respond(200, format!("echo {}", request.uri()));
                response
                    .headers_mut()
                    .insert(CONNECTION, hyper::header::HeaderValue::from_static("close"));
                response
            })
        })
        .await?;
        let terminator = Terminator::start(&upstream.to_string()).await?;
        assert!(terminator.endpoint().starts_with("https://localhost:"));

        let pem = std::fs::read(terminator.ca_file())?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert?)?;
        }
        let connector = client(roots)?;
        for name in ["localhost", "127.0.0.1"] {
            let tcp = TcpStream::connect(("127.0.0.1", terminator.port)).await?;
            let mut tls = connector
                .connect(ServerName::try_from(name)?.to_owned(), tcp)
                .await?;
            for path in ["/one", "/two"] {
                tls.write_all(format!("GET {path} HTTP/1.1\r\nhost: {name}\r\n\r\n").as_bytes())
                    .await?;
                let response = read_response(&mut tls).await?;
                assert!(response.starts_with("HTTP/1.1 200"), "{response}");
                assert!(response.ends_with(&format!("echo {path}")), "{response}");
                assert!(!response.to_ascii_lowercase().contains("connection: close"));
            }
        }
        assert_eq!(terminator.handshakes(), 2);
        assert_eq!(terminator.requests(), 4);

        // A client without the CA refuses the certificate, and the terminator counts it.
        let tcp = TcpStream::connect(("127.0.0.1", terminator.port)).await?;
        let refused = client(RootCertStore::empty())?
            .connect(ServerName::try_from("localhost")?.to_owned(), tcp)
            .await;
        assert!(refused.is_err());
        for _ in 0..100 {
            if terminator.refused() > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!((terminator.refused(), terminator.cut_off()), (1, 0));

        let ca_file = terminator.ca_file().to_owned();
        drop(terminator);
        assert!(!ca_file.exists());
        Ok(())
    }
}
