//! Negotiation of permessage-deflate (RFC 7692 section 7): the offer and response parameters
//! ([`Offer`]), what one endpoint wants ([`DeflateConfig`]) and what both sides agreed on
//! ([`DeflateParams`]).
//!
//! It owns the parameter rules (unknown, repeated and invalid parameters, window sizes 8-15,
//! a response that must match the offer); the handshake's extension parser splits the header,
//! and the codec ([`super::codec`]) applies the agreed parameters.

use core::fmt;

use crate::handshake::Extension;
use crate::role::Role;

/// The parameters both sides agreed on in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: the four parameters RFC 7692 section 7.1 defines"
)]
pub struct DeflateParams {
    /// The server resets its compression context after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after each message.
    pub client_no_context_takeover: bool,
    /// The LZ77 window the server compresses with (8–15).
    pub server_max_window_bits: u8,
    /// The LZ77 window the client compresses with (8–15).
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    /// Context takeover both ways, 32 KiB windows.
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateParams {
    /// Whether the side playing `role` resets its compression context after each message.
    pub const fn no_context_takeover(&self, role: Role) -> bool {
        match role {
            Role::Client => self.client_no_context_takeover,
            Role::Server => self.server_no_context_takeover,
        }
    }

    /// The window the side playing `role` compresses with.
    pub const fn window_bits(&self, role: Role) -> u8 {
        match role {
            Role::Client => self.client_max_window_bits,
            Role::Server => self.server_max_window_bits,
        }
    }
}

/// The extension token.
pub const EXTENSION_NAME: &str = crate::handshake::PERMESSAGE_DEFLATE;

/// One permessage-deflate offer or response, as written in `Sec-WebSocket-Extensions`.
///
/// `client_max_window_bits` has three states: absent (`None`), present without a value
/// (`Some(None)`, only valid in a client's offer: "I can limit my window"), and with a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: the four parameters RFC 7692 section 7.1 defines"
)]
pub struct Offer {
    /// `server_no_context_takeover`.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover`.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N`.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits[=N]`.
    pub client_max_window_bits: Option<Option<u8>>,
}

/// Why an offer or a response is refused (RFC 7692 section 7: unknown, repeated or invalid
/// parameters; a response the client did not allow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NegotiationError {
    /// A parameter RFC 7692 does not define.
    UnknownParameter,
    /// A parameter given twice.
    DuplicateParameter,
    /// A value that is not a window size 8–15, or a value on a flag parameter.
    InvalidValue,
    /// The server's response breaks what the client offered (a parameter it may not send,
    /// or a window larger than offered).
    NotOffered,
    /// The response asks us to compress with an 8-bit window, which zlib cannot do.
    UnsupportedWindow,
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownParameter => "unknown permessage-deflate parameter",
            Self::DuplicateParameter => "repeated permessage-deflate parameter",
            Self::InvalidValue => "invalid permessage-deflate parameter value",
            Self::NotOffered => "permessage-deflate response does not match the offer",
            Self::UnsupportedWindow => "an 8-bit compression window cannot be used",
        })
    }
}

impl core::error::Error for NegotiationError {}

fn window_value(v: Option<&str>) -> Result<u8, NegotiationError> {
    let v = v.ok_or(NegotiationError::InvalidValue)?;
    let v = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v);
    let ok = !v.is_empty()
        && v.len() <= 2
        && v.bytes().all(|b| b.is_ascii_digit())
        && !v.starts_with('0');
    let n: u8 = if ok {
        v.parse().map_err(|_| NegotiationError::InvalidValue)?
    } else {
        0
    };
    if (8..=15).contains(&n) {
        Ok(n)
    } else {
        Err(NegotiationError::InvalidValue)
    }
}

impl Offer {
    /// Builds an offer from its parameters (`name`, optional value), already split out of the
    /// header by the handshake's extension parser. Unknown, repeated and invalid parameters are
    /// refused.
    pub fn from_params<'a, I>(params: I) -> Result<Self, NegotiationError>
    where
        I: IntoIterator<Item = (&'a str, Option<&'a str>)>,
    {
        let mut o = Self::default();
        let mut seen = [false; 4];
        for (name, value) in params {
            let idx = match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => 0,
                "client_no_context_takeover" => 1,
                "server_max_window_bits" => 2,
                "client_max_window_bits" => 3,
                _ => return Err(NegotiationError::UnknownParameter),
            };
            if core::mem::replace(&mut seen[idx], true) {
                return Err(NegotiationError::DuplicateParameter);
            }
            match idx {
                0 | 1 if value.is_some() => return Err(NegotiationError::InvalidValue),
                0 => o.server_no_context_takeover = true,
                1 => o.client_no_context_takeover = true,
                2 => o.server_max_window_bits = Some(window_value(value)?),
                _ => {
                    o.client_max_window_bits = Some(if value.is_some() {
                        Some(window_value(value)?)
                    } else {
                        None
                    })
                }
            }
        }
        Ok(o)
    }

    /// The header value (`permessage-deflate; …`).
    pub fn to_header_value(&self) -> alloc::string::String {
        use core::fmt::Write;
        let mut s = alloc::string::String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(n) = self.server_max_window_bits {
            let _ = write!(s, "; server_max_window_bits={n}");
        }
        match self.client_max_window_bits {
            Some(Some(n)) => {
                let _ = write!(s, "; client_max_window_bits={n}");
            }
            Some(None) => s.push_str("; client_max_window_bits"),
            None => {}
        }
        s
    }
}

impl Offer {
    /// Reads an offer or response from a parsed `Sec-WebSocket-Extensions` element (which must
    /// be `permessage-deflate`).
    pub fn from_extension(ext: &Extension<'_>) -> Result<Self, NegotiationError> {
        if !ext.name.eq_ignore_ascii_case(EXTENSION_NAME) {
            return Err(NegotiationError::UnknownParameter);
        }
        Self::from_params(ext.params.iter().map(|p| (p.name, p.value.as_deref())))
    }
}

/// What one endpoint wants from permessage-deflate: used to build a client's offer and to
/// answer offers as a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Ask (client) or decide (server) that the server resets its context per message.
    pub server_no_context_takeover: bool,
    /// Ask (client) or decide (server) that the client resets its context per message.
    pub client_no_context_takeover: bool,
    /// The largest window the server may compress with (9–15; 8 is treated as 9).
    pub server_max_window_bits: u8,
    /// The largest window the client may compress with (9–15; 8 is treated as 9).
    pub client_max_window_bits: u8,
}

/// Builder methods, one per field and of the same name: start from `DeflateConfig::default()` (or a
/// constructor) and chain them; the struct is `#[non_exhaustive]`, so fields may be added without
/// breaking callers.
impl DeflateConfig {
    /// Sets [`DeflateConfig::server_no_context_takeover`]: ask (client) or decide (server) that the
    /// server resets its context per message.
    #[must_use]
    pub const fn server_no_context_takeover(mut self, server_no_context_takeover: bool) -> Self {
        self.server_no_context_takeover = server_no_context_takeover;
        self
    }

    /// Sets [`DeflateConfig::client_no_context_takeover`]: ask (client) or decide (server) that the
    /// client resets its context per message.
    #[must_use]
    pub const fn client_no_context_takeover(mut self, client_no_context_takeover: bool) -> Self {
        self.client_no_context_takeover = client_no_context_takeover;
        self
    }

    /// Sets [`DeflateConfig::server_max_window_bits`]: the largest window the server may compress
    /// with (9–15; 8 is treated as 9).
    #[must_use]
    pub const fn server_max_window_bits(mut self, server_max_window_bits: u8) -> Self {
        self.server_max_window_bits = server_max_window_bits;
        self
    }

    /// Sets [`DeflateConfig::client_max_window_bits`]: the largest window the client may compress
    /// with (9–15; 8 is treated as 9).
    #[must_use]
    pub const fn client_max_window_bits(mut self, client_max_window_bits: u8) -> Self {
        self.client_max_window_bits = client_max_window_bits;
        self
    }
}

impl Default for DeflateConfig {
    /// Context takeover both ways, full windows.
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateConfig {
    /// The offer a client sends: always announces `client_max_window_bits` (so the server may
    /// limit our window), and asks for what is configured.
    pub fn client_offer(&self) -> Offer {
        let cbits = self.client_max_window_bits.clamp(9, 15);
        let sbits = self.server_max_window_bits.clamp(9, 15);
        Offer {
            server_no_context_takeover: self.server_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: (sbits < 15).then_some(sbits),
            client_max_window_bits: Some((cbits < 15).then_some(cbits)),
        }
    }

    /// A server's answer to one offer: the response to send and the agreed parameters, or
    /// `None` to decline this offer (try the next one). Declines offers that would make us
    /// compress with an 8-bit window.
    pub fn accept(&self, offer: &Offer) -> Option<(Offer, DeflateParams)> {
        let mut sbits = self.server_max_window_bits.clamp(9, 15);
        if let Some(limit) = offer.server_max_window_bits {
            if limit < 9 {
                return None;
            }
            sbits = sbits.min(limit);
        }
        let client_bits = match offer.client_max_window_bits {
            None => None,
            Some(offered) => {
                let mine = self.client_max_window_bits.clamp(9, 15);
                let v = offered.map_or(mine, |o| o.min(mine));
                (v < 15 || offered.is_some()).then_some(v)
            }
        };
        let response = Offer {
            server_no_context_takeover: offer.server_no_context_takeover
                || self.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: (sbits < 15 || offer.server_max_window_bits.is_some())
                .then_some(sbits),
            client_max_window_bits: client_bits.map(Some),
        };
        let params = DeflateParams {
            server_no_context_takeover: response.server_no_context_takeover,
            client_no_context_takeover: response.client_no_context_takeover,
            server_max_window_bits: sbits,
            client_max_window_bits: client_bits.unwrap_or(15),
        };
        Some((response, params))
    }

    /// A server's choice among the client's offers (`Sec-WebSocket-Extensions` elements in
    /// preference order): the first valid `permessage-deflate` offer it can accept, with the
    /// response header value and the agreed parameters. Offers with unknown, repeated or
    /// invalid parameters are declined, as RFC 7692 section 5 asks, not fatal.
    pub fn negotiate(
        &self,
        offers: &[Extension<'_>],
    ) -> Option<(alloc::string::String, DeflateParams)> {
        offers
            .iter()
            .filter(|e| e.name.eq_ignore_ascii_case(EXTENSION_NAME))
            .filter_map(|e| Offer::from_extension(e).ok())
            .find_map(|o| self.accept(&o))
            .map(|(response, params)| (response.to_header_value(), params))
    }

    /// A client's reading of the server's `Sec-WebSocket-Extensions` response: `Ok(None)`
    /// when deflate was not accepted, the agreed parameters when it was, an error when the
    /// response is invalid or answers deflate twice.
    pub fn negotiated(
        &self,
        offered: &Offer,
        response: &[Extension<'_>],
    ) -> Result<Option<DeflateParams>, NegotiationError> {
        let mut found = None;
        for ext in response
            .iter()
            .filter(|e| e.name.eq_ignore_ascii_case(EXTENSION_NAME))
        {
            if found.is_some() {
                return Err(NegotiationError::DuplicateParameter);
            }
            found = Some(self.check_response(offered, &Offer::from_extension(ext)?)?);
        }
        Ok(found)
    }

    /// A client's check of the server's response against the offer it sent.
    pub fn check_response(
        &self,
        offered: &Offer,
        response: &Offer,
    ) -> Result<DeflateParams, NegotiationError> {
        if let (Some(r), Some(o)) = (
            response.server_max_window_bits,
            offered.server_max_window_bits,
        ) {
            if r > o {
                return Err(NegotiationError::NotOffered);
            }
        }
        let client_bits = match (
            response.client_max_window_bits,
            offered.client_max_window_bits,
        ) {
            (None, _) => offered.client_max_window_bits.flatten().unwrap_or(15),
            (Some(_), None) => return Err(NegotiationError::NotOffered),
            (Some(None), Some(_)) => return Err(NegotiationError::InvalidValue),
            (Some(Some(r)), Some(o)) => {
                if o.is_some_and(|o| r > o) {
                    return Err(NegotiationError::NotOffered);
                }
                r
            }
        };
        if client_bits < 9 {
            return Err(NegotiationError::UnsupportedWindow);
        }
        Ok(DeflateParams {
            server_no_context_takeover: response.server_no_context_takeover,
            client_no_context_takeover: response.client_no_context_takeover
                || offered.client_no_context_takeover,
            server_max_window_bits: response.server_max_window_bits.unwrap_or(15),
            client_max_window_bits: client_bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(params: &[(&str, Option<&str>)]) -> Result<Offer, NegotiationError> {
        Offer::from_params(params.iter().copied())
    }

    #[test]
    fn offers_are_validated() {
        assert_eq!(offer(&[]), Ok(Offer::default()));
        assert_eq!(
            offer(&[("x", None)]),
            Err(NegotiationError::UnknownParameter)
        );
        let dup = [
            ("client_no_context_takeover", None),
            ("client_no_context_takeover", None),
        ];
        assert_eq!(offer(&dup), Err(NegotiationError::DuplicateParameter));
        for bad in ["7", "16", "08", "", "1a", "9999"] {
            assert_eq!(
                offer(&[("server_max_window_bits", Some(bad))]),
                Err(NegotiationError::InvalidValue)
            );
        }
        assert_eq!(
            offer(&[("server_no_context_takeover", Some("1"))]),
            Err(NegotiationError::InvalidValue)
        );
        let o = offer(&[
            ("client_max_window_bits", None),
            ("server_max_window_bits", Some("\"10\"")),
        ])
        .unwrap();
        assert_eq!(
            (o.client_max_window_bits, o.server_max_window_bits),
            (Some(None), Some(10))
        );
        assert_eq!(
            o.to_header_value(),
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits"
        );
    }

    #[test]
    fn server_accepts_and_client_checks() {
        let server = DeflateConfig::default();
        let client = DeflateConfig {
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let sent = client.client_offer();
        let (response, sparams) = server.accept(&sent).unwrap();
        let cparams = client.check_response(&sent, &response).unwrap();
        assert_eq!(sparams, cparams);
        assert!(cparams.client_no_context_takeover && !cparams.server_no_context_takeover);
        // An offer limiting the server to 8 bits is declined (zlib cannot compress with 8).
        let eight = Offer {
            server_max_window_bits: Some(8),
            ..Offer::default()
        };
        assert_eq!(server.accept(&eight), None);
        // The server may limit a client that announced client_max_window_bits.
        let small = DeflateConfig {
            client_max_window_bits: 10,
            ..DeflateConfig::default()
        };
        let (resp, p) = small
            .accept(&Offer {
                client_max_window_bits: Some(None),
                ..Offer::default()
            })
            .unwrap();
        assert_eq!(
            (resp.client_max_window_bits, p.client_max_window_bits),
            (Some(Some(10)), 10)
        );
        // ...but not one that did not.
        let (resp, _) = small.accept(&Offer::default()).unwrap();
        assert_eq!(resp.client_max_window_bits, None);
        // Responses that break the offer.
        let plain = Offer::default();
        let bad = Offer {
            client_max_window_bits: Some(Some(10)),
            ..Offer::default()
        };
        assert_eq!(
            client.check_response(&plain, &bad),
            Err(NegotiationError::NotOffered)
        );
        let limited = Offer {
            server_max_window_bits: Some(10),
            ..Offer::default()
        };
        let wider = Offer {
            server_max_window_bits: Some(12),
            ..Offer::default()
        };
        assert_eq!(
            client.check_response(&limited, &wider),
            Err(NegotiationError::NotOffered)
        );
        let forced8 = Offer {
            client_max_window_bits: Some(Some(8)),
            ..Offer::default()
        };
        assert_eq!(
            client.check_response(&sent, &forced8),
            Err(NegotiationError::UnsupportedWindow)
        );
    }

    #[test]
    fn negotiation_from_header_values() {
        use crate::handshake::parse_extensions;
        let server = DeflateConfig::default();
        // First offer has an unknown parameter and is skipped; the second is taken.
        let offers = parse_extensions(
            b"permessage-deflate; bogus, permessage-deflate; client_max_window_bits; server_max_window_bits=10, x-other",
        )
        .unwrap();
        let (response, params) = server.negotiate(&offers).unwrap();
        assert_eq!(response, "permessage-deflate; server_max_window_bits=10");
        assert_eq!(params.server_max_window_bits, 10);
        let client = DeflateConfig::default();
        let offered = client.client_offer();
        let resp = parse_extensions(response.as_bytes()).unwrap();
        assert!(client.negotiated(&offered, &resp).unwrap().is_some());
        let twice = parse_extensions(b"permessage-deflate, permessage-deflate").unwrap();
        assert!(client.negotiated(&offered, &twice).is_err());
        assert_eq!(client.negotiated(&offered, &[]), Ok(None));
        assert!(server
            .negotiate(&parse_extensions(b"x-webkit-deflate-frame").unwrap())
            .is_none());
    }
}
