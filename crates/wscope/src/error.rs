//! Errors of the endpoints.
//!
//! One enum, [`Error`], with a variant per layer, so callers branch on the variant (and on the
//! typed close code or HTTP status inside it), never on the `Display` text. A close from the
//! peer is *not* an error: it arrives as [`crate::Message::Close`]. [`Error::ConnectionClosed`]
//! is the normal end of a blocking connection (after the peer's close was returned);
//! [`Error::AlreadyClosed`] means the application used a connection that had ended.

use core::fmt;
use std::io;

pub use wscope_proto::connection::SendError;
use wscope_proto::ProtocolError;

use crate::url::UrlError;

/// Everything that can go wrong on a WebSocket endpoint.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke RFC 6455 after the handshake; the close carrying
    /// [`ProtocolError::close_code`] (1002, 1007, 1009) was sent before this was returned.
    Proto(ProtocolError),
    /// The opening handshake failed (either side).
    Handshake(HandshakeError),
    /// The transport failed.
    Io(io::Error),
    /// TLS failed (certificate verification, alerts). Feature `rustls`.
    #[cfg(feature = "rustls")]
    Tls(rustls::Error),
    /// A deadline passed: TCP connect, opening handshake, or an idle connection.
    Timeout,
    /// The URL cannot be used.
    Url(UrlError),
    /// The connection has ended normally: the closing handshake is over and the transport
    /// closed. Not a failure: the blocking driver's reads return it once, at the end (the
    /// tokio stream ends with `None` instead). Using the connection after it is
    /// [`Error::AlreadyClosed`].
    ConnectionClosed,
    /// The application used a connection that has ended (a send after the close, a read after
    /// [`Error::ConnectionClosed`] was returned): API misuse.
    AlreadyClosed,
    /// The application asked for something the protocol forbids (e.g. a 126-byte ping, or data
    /// after its close).
    Send(SendError),
    /// A `wscope::tokio::Broadcast` member did not keep up: it fell further behind than
    /// the group keeps messages, and skipped this many of the oldest ones waiting for it. Not a failure of the
    /// connection, which goes on with the newer messages (as `tokio::sync::broadcast`'s
    /// `Lagged`); a server that must not skip messages closes it (for instance with 1008 or
    /// 1013).
    Lagged {
        /// Messages dropped.
        missed: u64,
    },
    /// The operating system's random source failed: no unpredictable handshake or masking
    /// key can be made, so the connection fails instead of using a weaker one.
    Random(getrandom::Error),
    /// A file named in the configuration (a certificate, a key, a CA) cannot be read.
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Why the opening handshake failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer's request or response is not a valid WebSocket upgrade; the core's verdict,
    /// with the HTTP status a server answers (400, 426, 431).
    Proto(wscope_proto::handshake::UpgradeError),
    /// The server answered with a status other than 101.
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// The server application's callback rejected the request with this status.
    Rejected {
        /// The HTTP status sent.
        status: u16,
    },
    /// The HTTP proxy refused the CONNECT request.
    Proxy {
        /// The proxy's status code (0 when its answer was not HTTP).
        status: u16,
    },
    /// The peer closed the connection before the handshake finished.
    Eof,
    /// The request or response could not be written as configured (a header that clashes
    /// with one the endpoint writes itself, a value with forbidden characters).
    Build(wscope_proto::handshake::BuildError),
    /// The configuration cannot produce a valid request (e.g. a header that clashes with one
    /// the client sets itself, or a name or value with forbidden characters).
    Config(&'static str),
    /// The server's permessage-deflate response breaks RFC 7692 or our offer. Feature
    /// `deflate`.
    #[cfg(feature = "deflate")]
    Deflate(wscope_proto::deflate::NegotiationError),
    /// The server refused the connection, before reading its request, because it would pass
    /// a connection limit (answered with 503 on a plain port).
    OverLimit(crate::limits::LimitExceeded),
    /// An HTTP/2 extended CONNECT (RFC 8441) broke the core's rules (server side: answered
    /// with [`wscope_proto::handshake::ConnectError::http_status`], 400 or 501), or the
    /// server refused it or answered what was not offered (client side).
    Connect(wscope_proto::handshake::ConnectError),
    /// The HTTP/2 server does not allow extended CONNECT: it did not send
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` (RFC 8441 section 3).
    ExtendedConnectDisabled,
    /// The TLS server did not choose ALPN `h2`: it does not speak HTTP/2 on this port.
    AlpnNotH2,
}

impl HandshakeError {
    /// The HTTP status that goes with this failure, where there is one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Proto(e) => Some(e.http_status()),
            Self::Status { status } | Self::Rejected { status } | Self::Proxy { status } => {
                Some(*status)
            }
            Self::OverLimit(e) => Some(e.http_status()),
            Self::Connect(wscope_proto::handshake::ConnectError::Status { status }) => {
                Some(*status)
            }
            Self::Connect(e) => Some(e.http_status()),
            Self::Eof
            | Self::Config(_)
            | Self::Build(_)
            | Self::ExtendedConnectDisabled
            | Self::AlpnNotH2 => None,
            #[cfg(feature = "deflate")]
            Self::Deflate(_) => None,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proto(e) => write!(f, "invalid handshake: {e}"),
            Self::Status { status } => write!(f, "server answered HTTP {status} instead of 101"),
            Self::Rejected { status } => write!(f, "request rejected with HTTP {status}"),
            Self::Proxy { status } => write!(f, "proxy refused CONNECT (HTTP {status})"),
            Self::Eof => f.write_str("connection closed during the handshake"),
            Self::Build(e) => write!(f, "cannot build the handshake: {e}"),
            Self::Config(what) => write!(f, "bad client configuration: {what}"),
            #[cfg(feature = "deflate")]
            Self::Deflate(e) => write!(f, "permessage-deflate negotiation failed: {e}"),
            Self::OverLimit(e) => write!(f, "refused with 503: {e}"),
            Self::Connect(e) => write!(f, "HTTP/2 extended CONNECT: {e}"),
            Self::ExtendedConnectDisabled => f.write_str(
                "the HTTP/2 server does not allow extended CONNECT \
                 (no SETTINGS_ENABLE_CONNECT_PROTOCOL): no WebSocket over HTTP/2 there",
            ),
            Self::AlpnNotH2 => f.write_str("the TLS server did not choose HTTP/2 (ALPN h2)"),
        }
    }
}

impl core::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Proto(e) => Some(e),
            Self::Build(e) => Some(e),
            Self::OverLimit(e) => Some(e),
            Self::Connect(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proto(e) => write!(f, "protocol error ({}): {e}", e.close_code()),
            Self::Handshake(e) => e.fmt(f),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            #[cfg(feature = "rustls")]
            Self::Tls(e) => match crate::tls::CertificateProblem::of(e) {
                Some(problem) => write!(f, "TLS error: {problem}"),
                None => write!(f, "TLS error: {e}"),
            },
            Self::Timeout => f.write_str("timed out"),
            Self::Url(e) => write!(f, "bad URL: {e}"),
            Self::ConnectionClosed => f.write_str("the connection is closed"),
            Self::AlreadyClosed => f.write_str("the connection was already closed"),
            Self::Send(e) => write!(f, "cannot send: {e}"),
            Self::Lagged { missed } => {
                write!(f, "fell behind the broadcast: {missed} messages dropped")
            }
            Self::File { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::Random(e) => write!(f, "the OS random source failed: {e}"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Proto(e) => Some(e),
            Self::Handshake(e) => Some(e),
            Self::Io(e) => Some(e),
            #[cfg(feature = "rustls")]
            Self::Tls(e) => Some(e),
            Self::Url(e) => Some(e),
            Self::Send(e) => Some(e),
            Self::File { source, .. } => Some(source),
            // `getrandom::Error` implements `std::error::Error` only with its `std` feature;
            // its code is in the `Display` text.
            Self::Timeout
            | Self::ConnectionClosed
            | Self::AlreadyClosed
            | Self::Lagged { .. }
            | Self::Random(_) => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        // rustls' stream adapters wrap TLS failures in io::Error; unwrap them so users can
        // branch on `Error::Tls`.
        #[cfg(feature = "rustls")]
        if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
            if let Some(Ok(tls)) = e
                .into_inner()
                .map(|inner| inner.downcast::<rustls::Error>())
            {
                return Self::Tls(*tls);
            }
            return Self::Io(io::Error::other("TLS error"));
        }
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Self::Timeout,
            _ => Self::Io(e),
        }
    }
}

#[cfg(feature = "rustls")]
impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Self::Tls(e)
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Self::Proto(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Self::Url(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
