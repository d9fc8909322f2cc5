//! Masking and unmasking payload bytes in place (RFC 6455 section 5.3).
//!
//! Masking is an XOR with the 4-byte key repeated; it is its own inverse. `offset` is the
//! position of `buf[0]` within the frame's payload, so a payload that arrives in chunks is
//! unmasked chunk by chunk with the same result as in one piece.
//!
//! The fast path XORs 64-byte blocks against a pre-rotated 64-byte key pattern, written so
//! the compiler vectorizes it (SSE2/AVX2/NEON) without `unsafe`; [`apply_mask_scalar`] is the
//! byte-at-a-time reference the tests compare it with.
//!
//! ```
//! use wscope_proto::mask::apply_mask;
//!
//! let key = [0x37, 0xfa, 0x21, 0x3d];
//! let mut payload = *b"Hello";
//! apply_mask(&mut payload, key, 0);
//! assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//! // Unmask in two chunks: the running offset keeps the key aligned.
//! let (a, b) = payload.split_at_mut(2);
//! apply_mask(a, key, 0);
//! apply_mask(b, key, 2);
//! assert_eq!(&payload, b"Hello");
//! ```

/// XORs `buf` with `key`, where `buf[0]` is byte `offset` of the payload.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: u64) {
    let rot = (offset % 4) as usize;
    if buf.len() < 16 {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(rot + i) & 3];
        }
        return;
    }
    // Key rotated so that pattern[i] applies to buf[i].
    let rotated = [
        key[rot],
        key[(rot + 1) & 3],
        key[(rot + 2) & 3],
        key[(rot + 3) & 3],
    ];
    let mut pattern = [0u8; 64];
    for (i, p) in pattern.iter_mut().enumerate() {
        *p = rotated[i & 3];
    }
    let mut blocks = buf.chunks_exact_mut(64);
    for block in &mut blocks {
        xor_block(block, &pattern);
    }
    // The tail starts at a multiple of 64, which keeps the same rotation.
    for (b, k) in blocks.into_remainder().iter_mut().zip(pattern.iter()) {
        *b ^= *k;
    }
}

#[inline(always)]
fn xor_block(block: &mut [u8], pattern: &[u8; 64]) {
    for (b, k) in block.iter_mut().zip(pattern.iter()) {
        *b ^= *k;
    }
}

/// The byte-at-a-time reference implementation of [`apply_mask`].
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[((offset + i as u64) % 4) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn all_alignments_and_split_points() {
        let key = [0x12, 0x9a, 0xfe, 0x01];
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut backing = [0u8; 320];
        for align in 0..16 {
            for len in [0usize, 1, 3, 15, 16, 17, 63, 64, 65, 127, 128, 200, 300] {
                for offset in 0..4u64 {
                    let buf = &mut backing[align..align + len];
                    buf.copy_from_slice(&data[..len]);
                    apply_mask(buf, key, offset);
                    let mut reference = data[..len].to_vec();
                    apply_mask_scalar(&mut reference, key, offset);
                    assert_eq!(
                        buf,
                        &reference[..],
                        "align {align} len {len} offset {offset}"
                    );
                }
            }
        }
        // Every split point of one payload equals masking it whole.
        let mut whole = data.clone();
        apply_mask_scalar(&mut whole, key, 0);
        for split in 0..data.len() {
            let mut v = data.clone();
            let (a, b) = v.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split as u64);
            assert_eq!(v, whole, "split {split}");
        }
    }
}
