//! Permessage-deflate on a connection: the state, turning it on after the handshake, what
//! it holds in memory, and compressing sent frames. Received messages are inflated in
//! [`Connection::recv`] by the shared message layer ([`crate::deflate::MessageInflater`]).

use alloc::vec::Vec;

use super::{write_frame, Connection, SendError};
use crate::frame::OpCode;
use crate::role::Role;

/// Options for compressing outgoing messages once permessage-deflate is agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateOptions {
    /// zlib compression level, 0–9.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (RSV1 is per message).
    pub threshold: usize,
    /// zlib memLevel, 1–9: the compressor's literal buffers take `7 << (mem_level + 6)`
    /// bytes (see [`crate::deflate::DEFAULT_MEM_LEVEL`]). The window is negotiated
    /// ([`crate::deflate::DeflateConfig`]).
    pub mem_level: u8,
}

/// Builder methods, one per field and of the same name: start from `DeflateOptions::default()` (or
/// a constructor) and chain them; the struct is `#[non_exhaustive]`, so fields may be added without
/// breaking callers.
impl DeflateOptions {
    /// Sets [`DeflateOptions::level`]: zlib compression level, 0–9.
    #[must_use]
    pub const fn level(mut self, level: u32) -> Self {
        self.level = level;
        self
    }

    /// Sets [`DeflateOptions::threshold`]: messages shorter than this are sent uncompressed (RSV1
    /// is per message).
    #[must_use]
    pub const fn threshold(mut self, threshold: usize) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets [`DeflateOptions::mem_level`]: zlib memLevel, 1–9: the compressor's literal buffers
    /// take `7 << (mem_level + 6)` bytes (see [`crate::deflate::DEFAULT_MEM_LEVEL`]).
    #[must_use]
    pub const fn mem_level(mut self, mem_level: u8) -> Self {
        self.mem_level = mem_level;
        self
    }
}

impl Default for DeflateOptions {
    /// Level 6, messages from 16 bytes on compressed, memLevel
    /// [`crate::deflate::DEFAULT_MEM_LEVEL`].
    fn default() -> Self {
        Self {
            level: 6,
            threshold: 16,
            mem_level: crate::deflate::DEFAULT_MEM_LEVEL,
        }
    }
}

/// What permessage-deflate holds in memory on a connection ([`Connection::deflate_memory`]).
/// Contexts are allocated by the first compressed message of their direction and freed after
/// each message when that direction's sender does not take its context over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateMemory {
    /// The decompression context for received messages is allocated.
    pub inflate_context: bool,
    /// The compression context for sent messages is allocated.
    pub deflate_context: bool,
    /// Bytes of reusable buffers (inflated output, compressed output) held.
    pub buffer_bytes: usize,
}

/// Per-connection permessage-deflate state.
pub(super) struct DeflateState {
    /// Received messages: inflated within `max_message_len`, inflated text validated.
    pub(super) inflater: crate::deflate::MessageInflater,
    pub(super) deflater: crate::deflate::Deflater,
    pub(super) options: DeflateOptions,
    /// The fragmented message being sent is compressed.
    pub(super) sending_compressed: bool,
    /// We reset our compression context after each message (no context takeover).
    pub(super) reset_sends: bool,
    /// Compressed output of the frame being sent, reused while small.
    pub(super) scratch: Vec<u8>,
}

/// The compressor settings a message compressed once must have been compressed with to be
/// sent as it is on a connection ([`Connection::shared_send`]): a fresh context every
/// message (no context takeover on the sending side), this window, level and memLevel. The
/// output of a fresh compressor depends only on these and the payload, so connections that
/// report the same settings can share one compressed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SharedCompression {
    /// The LZ77 window, as the handshake agreed for this endpoint's sends (9–15).
    pub window_bits: u8,
    /// zlib compression level, 0–9.
    pub level: u8,
    /// zlib memLevel, 1–9.
    pub mem_level: u8,
}

impl SharedCompression {
    /// A compressor with these settings that resets after every message: compress one whole
    /// message with it (`fin`) to get the payload of a shared compressed frame.
    pub const fn deflater(&self) -> crate::deflate::Deflater {
        crate::deflate::Deflater::new(self.level as u32, self.window_bits, true)
            .with_mem_level(self.mem_level)
    }
}

/// How a whole data message prepared once for many connections goes out on one of them
/// ([`Connection::shared_send`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedSend {
    /// Uncompressed, header from [`Connection::data_header`]: permessage-deflate is off, or
    /// the message is under the compression threshold.
    Plain,
    /// Compressed with these settings, header from [`Connection::precompressed_header`].
    Compressed(SharedCompression),
    /// Only this connection's own compressor may compress it (it takes its context over
    /// between messages): send it as any other message ([`Connection::send_frame`]).
    PerConnection,
}

/// Compressed-output storage kept between messages with context takeover.
const SCRATCH_KEEP: usize = 16 * 1024;

impl Connection {
    /// What permessage-deflate holds in memory now (`None` when it is off): an idle
    /// connection holds no zlib context until its first compressed message, and none between
    /// messages in a direction without context takeover.
    pub fn deflate_memory(&self) -> Option<DeflateMemory> {
        self.core.deflate.as_ref().map(|d| DeflateMemory {
            inflate_context: d.inflater.has_context(),
            deflate_context: d.deflater.has_context(),
            buffer_bytes: d.inflater.capacity() + d.scratch.capacity(),
        })
    }

    /// Turns on permessage-deflate with the parameters agreed in the handshake: received
    /// messages with RSV1 are inflated (the inflated size counts against `max_message_len`,
    /// 1009 beyond; corrupt data is 1007), and sent messages of at least `options.threshold`
    /// bytes are compressed.
    pub fn enable_deflate(
        &mut self,
        params: crate::deflate::DeflateParams,
        options: DeflateOptions,
    ) {
        let role = self.core.role;
        let peer = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        self.core.deflate = Some(DeflateState {
            inflater: crate::deflate::MessageInflater::new(
                params.no_context_takeover(peer),
                self.core.cfg.max_message_len,
                self.core.cfg.validate_utf8,
                crate::decoder::Strictness::Enforce,
            ),
            deflater: crate::deflate::Deflater::new(
                options.level,
                params.window_bits(role),
                params.no_context_takeover(role),
            )
            .with_mem_level(options.mem_level),
            reset_sends: params.no_context_takeover(role),
            options,
            sending_compressed: false,
            scratch: Vec::new(),
        });
        let mut acfg = *self.decoder.config();
        acfg.extension_rsv |= crate::frame::RSV1;
        self.decoder.set_config(acfg);
    }

    /// How a whole data message of `len` bytes prepared once for many connections goes out on
    /// this one: uncompressed, compressed once with settings shared by every connection that
    /// reports the same ones, or compressed by this connection's own compressor.
    pub fn shared_send(&self, len: usize) -> SharedSend {
        match self.core.deflate.as_ref() {
            None => SharedSend::Plain,
            Some(d) if len < d.options.threshold => SharedSend::Plain,
            Some(d) if d.reset_sends => SharedSend::Compressed(SharedCompression {
                window_bits: d.deflater.window_bits(),
                level: d.deflater.level(),
                mem_level: d.deflater.mem_level(),
            }),
            Some(_) => SharedSend::PerConnection,
        }
    }

    /// Checks sequencing for a whole message (`opcode` TEXT or BINARY) compressed elsewhere
    /// with the settings [`Self::shared_send`] reported, `len` bytes compressed, and builds
    /// its header (RSV1 set, the client's masking key): the caller writes the header and the
    /// compressed payload. [`SendError::NotShareable`] unless this connection's
    /// [`Self::shared_send`] would say `Compressed` for some length.
    pub fn precompressed_header(
        &mut self,
        opcode: OpCode,
        len: u64,
    ) -> Result<crate::frame::FrameHeader, SendError> {
        if !self.core.deflate.as_ref().is_some_and(|d| d.reset_sends) {
            return Err(SendError::NotShareable);
        }
        if opcode == OpCode::CONTINUATION {
            return Err(SendError::FragmentSequence);
        }
        let mut header = self.sequence(opcode, len, true)?;
        header.rsv = crate::frame::RSV1;
        Ok(header)
    }

    /// With deflate on: `Some(true)` to compress this frame, `Some(false)` not to.
    pub(super) fn compress_decision(&self, opcode: OpCode, len: usize, fin: bool) -> Option<bool> {
        let d = self.core.deflate.as_ref()?;
        Some(if opcode == OpCode::CONTINUATION {
            d.sending_compressed
        } else {
            // A whole message is compressed from the threshold on; a fragmented one always.
            !fin || len >= d.options.threshold
        })
    }

    /// Encodes one data frame compressed (RSV1 on a message's first frame), keeping the
    /// compressed-output buffer for the next one while it is small.
    pub(super) fn send_compressed(
        &mut self,
        out: &mut Vec<u8>,
        opcode: OpCode,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        let Some(mut d) = self.core.deflate.take() else {
            return Err(SendError::Closed);
        };
        let mut compressed = core::mem::take(&mut d.scratch);
        compressed.clear();
        d.deflater.compress(payload, fin, &mut compressed);
        let result = self.sequence(opcode, compressed.len() as u64, fin);
        if let Ok(mut header) = result {
            if opcode != OpCode::CONTINUATION {
                header.rsv = crate::frame::RSV1;
            }
            d.sending_compressed = !fin;
            write_frame(out, &header, &compressed);
        }
        // Between messages keep no compressed output without context takeover (nothing else
        // is kept then), and only a small buffer with it.
        let keep = if d.reset_sends { 0 } else { SCRATCH_KEEP };
        if fin && compressed.capacity() > keep {
            compressed = Vec::new();
        }
        d.scratch = compressed;
        self.core.deflate = Some(d);
        result.map(|_| ())
    }
}
