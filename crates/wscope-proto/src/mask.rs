//! Masking and unmasking payload bytes in place (RFC 6455 section 5.3).
//!
//! Masking is an XOR with the 4-byte key repeated; it is its own inverse. `offset` is the
//! position of `buf[0]` within the frame's payload, so a payload that arrives in chunks is
//! unmasked chunk by chunk with the same result as in one piece.
//!
//! The fast path XORs 64-byte blocks against a pre-rotated 64-byte key pattern, written so
//! the compiler vectorizes it for the build's target (SSE2 on a baseline x86-64, NEON on
//! aarch64). With the `std` feature on x86, payloads of 256 bytes and more take the same loop
//! compiled for AVX2 when the CPU has it (detected at run time, once); that is the crate's only
//! `unsafe`. [`apply_mask_scalar`] is the byte-at-a-time reference the tests compare it with.
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
    for quad in pattern.chunks_exact_mut(4) {
        quad.copy_from_slice(&rotated);
    }
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "x86")))]
    if buf.len() >= AVX2_MIN_LEN && std::is_x86_feature_detected!("avx2") {
        // SAFETY: `xor_blocks_avx2` only needs the CPU to support AVX2, checked just above.
        #[allow(unsafe_code)]
        unsafe {
            xor_blocks_avx2(buf, &pattern)
        };
        return;
    }
    xor_blocks(buf, &pattern);
}

/// The payload length from which the AVX2 path pays for its feature check.
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "x86")))]
const AVX2_MIN_LEN: usize = 256;

/// XORs `buf` with `pattern` repeated, 64 bytes at a time; vectorized for the build's target.
#[inline(always)]
fn xor_blocks(buf: &mut [u8], pattern: &[u8; 64]) {
    let mut blocks = buf.chunks_exact_mut(64);
    for block in &mut blocks {
        for (b, k) in block.iter_mut().zip(pattern.iter()) {
            *b ^= *k;
        }
    }
    // The tail starts at a multiple of 64, which keeps the same rotation.
    for (b, k) in blocks.into_remainder().iter_mut().zip(pattern.iter()) {
        *b ^= *k;
    }
}

/// [`xor_blocks`] compiled for AVX2 (32-byte vectors) whatever the build's baseline target.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "x86")))]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn xor_blocks_avx2(buf: &mut [u8], pattern: &[u8; 64]) {
    xor_blocks(buf, pattern);
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
        let data: Vec<u8> = (0..1100u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut backing = [0u8; 1120];
        for align in 0..16 {
            // Both sides of the 16-byte and the 256-byte (AVX2) thresholds.
            for len in [
                0usize, 1, 3, 15, 16, 17, 63, 64, 65, 127, 128, 200, 255, 256, 257, 300, 319, 320,
                1100,
            ] {
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
