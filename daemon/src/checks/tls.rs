//! TLS client configurations for https checks (rustls with the ring provider).
//! Verification is on by default against the bundled webpki roots plus `ca_file`;
//! `tls_verify = false` accepts any certificate (signatures of the handshake are
//! still checked, so the peer must hold the key of the certificate it sent).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::config::checks::CheckConfig;

use super::spec::SpecError;

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
}

fn finish(mut cfg: ClientConfig) -> Arc<ClientConfig> {
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

fn default_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The rules about `ca_file`, `client_cert` and `client_key` that need no file
/// read (`check-config --offline` checks only these).
pub fn tls_file_keys(c: &TlsOptions) -> Result<(), SpecError> {
    if !c.tls_verify && c.ca_file.is_some() {
        return Err(("ca_file", "has no effect with tls_verify = false".into()));
    }
    match (&c.client_cert, &c.client_key) {
        (Some(_), None) => Err(("client_key", "is required with client_cert".into())),
        (None, Some(_)) => Err(("client_cert", "is required with client_key".into())),
        _ => Ok(()),
    }
}

/// What a TLS client configuration is made of: an https check's keys, or what a
/// notifier (SMTP, webhook) asks for. The default verifies against the bundled
/// roots, with no client certificate.
#[derive(Clone, Copy, Debug)]
pub struct TlsOptions<'a> {
    pub tls_verify: bool,
    pub ca_file: Option<&'a Path>,
    pub client_cert: Option<&'a Path>,
    pub client_key: Option<&'a Path>,
}

impl Default for TlsOptions<'_> {
    fn default() -> Self {
        TlsOptions {
            tls_verify: true,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }
}

impl<'a> From<&'a CheckConfig> for TlsOptions<'a> {
    fn from(c: &'a CheckConfig) -> Self {
        TlsOptions {
            tls_verify: c.tls_verify,
            ca_file: c.ca_file.as_deref(),
            client_cert: c.client_cert.as_deref(),
            client_key: c.client_key.as_deref(),
        }
    }
}

/// A TLS client configuration. Those without a CA file or client certificate are
/// shared (and so is their session cache). Errors name the key.
pub fn client_config(c: TlsOptions) -> Result<Arc<ClientConfig>, SpecError> {
    static VERIFY: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    static NO_VERIFY: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let plain = c.ca_file.is_none() && c.client_cert.is_none() && c.client_key.is_none();
    if plain {
        return Ok(if c.tls_verify {
            VERIFY
                .get_or_init(|| {
                    finish(
                        builder()
                            .with_root_certificates(default_roots())
                            .with_no_client_auth(),
                    )
                })
                .clone()
        } else {
            NO_VERIFY
                .get_or_init(|| {
                    finish(
                        builder()
                            .dangerous()
                            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
                            .with_no_client_auth(),
                    )
                })
                .clone()
        });
    }
    tls_file_keys(&c)?;
    let with_verifier = if c.tls_verify {
        let mut roots = default_roots();
        let mut pinned = Vec::new();
        if let Some(path) = &c.ca_file {
            let iter = CertificateDer::pem_file_iter(path)
                .map_err(|e| ("ca_file", format!("{}: {e}", path.display())))?;
            for cert in iter {
                let cert = cert.map_err(|e| ("ca_file", format!("{}: {e}", path.display())))?;
                roots.add(cert.clone()).map_err(|e| {
                    (
                        "ca_file",
                        format!("{}: not a usable CA certificate: {e}", path.display()),
                    )
                })?;
                pinned.push(cert);
            }
            if pinned.is_empty() {
                return Err(("ca_file", format!("{}: no PEM certificate in it", path.display())));
            }
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| ("ca_file", e.to_string()))?;
        builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier { inner, pinned }))
    } else {
        builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    };
    let cfg = match (&c.client_cert, &c.client_key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| ("client_cert", format!("{}: {e}", cert.display())))?;
            if chain.is_empty() {
                return Err((
                    "client_cert",
                    format!("{}: no PEM certificate in it", cert.display()),
                ));
            }
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| ("client_key", format!("{}: {e}", key.display())))?;
            with_verifier
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| ("client_key", format!("{}: {e}", key.display())))?
        }
        // Mismatched pairs were refused by tls_file_keys.
        _ => with_verifier.with_no_client_auth(),
    };
    Ok(finish(cfg))
}

/// webpki verification, plus: a server certificate that is itself in `ca_file`
/// (a self-signed certificate, as `openssl req -x509` makes them, with CA:TRUE,
/// which webpki refuses as a server certificate) is trusted as configured. Its
/// validity dates were checked by webpki before that refusal; its name is checked
/// here.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

fn ca_used_as_end_entity(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o))
        if format!("{o:?}").contains("CaUsedAsEndEntity"))
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(e)
                if ca_used_as_end_entity(&e)
                    && self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                let parsed = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `tls_verify = false`: any certificate, any name.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A rustls error in words an operator acts on.
pub fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "certificate not trusted (unknown issuer)".into(),
            C::BadSignature => "certificate not trusted (bad signature)".into(),
            C::NotValidForName => "certificate not valid for this name".into(),
            C::NotValidForNameContext { expected, presented } => format!(
                "certificate not valid for this name: {} is not in [{}]",
                expected.to_str(),
                presented.join(", ")
            ),
            C::Expired | C::ExpiredContext { .. } => "certificate expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "certificate not valid yet".into(),
            C::Revoked => "certificate revoked".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "certificate not valid for a TLS server (key usage)".into()
            }
            C::Other(o) if format!("{o:?}").contains("CaUsedAsEndEntity") => {
                "certificate not trusted (a CA certificate as the server's: self-signed? list it in ca_file)"
                    .into()
            }
            other => format!("certificate rejected ({other:?})"),
        },
        rustls::Error::AlertReceived(a) => format!("the server sent the alert {a:?}"),
        other => other.to_string(),
    }
}
