//! Byte-class masks for the trace reader's hot loops: SSE2 on x86_64 (part of its
//! baseline, so no run-time detection), plain loops elsewhere. The only `unsafe` is the
//! unaligned 16-byte load, always within the slice it reads.

/// Bit `i` is set when byte `i` of the block is the target: one mask per target.
pub(crate) fn block_masks(block: &[u8; 64], targets: [u8; 4]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for lane in 0..4 {
        let chunk: &[u8; 16] = block[lane * 16..lane * 16 + 16]
            .try_into()
            .unwrap_or(&[0; 16]);
        for (mask, &t) in out.iter_mut().zip(&targets) {
            *mask |= u64::from(eq_mask16(chunk, t)) << (lane * 16);
        }
    }
    out
}

/// Length of a JSON string body up to its closing quote or first backslash; `None` when a
/// control character comes first or the slice ends.
pub(crate) fn string_len(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 16) {
        let chunk: &[u8; 16] = chunk.try_into().unwrap_or(&[0; 16]);
        let m = string_stop_mask16(chunk);
        if m != 0 {
            let at = i + m.trailing_zeros() as usize;
            return (b[at] >= 0x20).then_some(at);
        }
        i += 16;
    }
    for (j, &c) in b[i..].iter().enumerate() {
        if c == b'"' || c == b'\\' {
            return Some(i + j);
        }
        if c < 0x20 {
            return None;
        }
    }
    None
}

#[cfg(target_arch = "x86_64")]
fn load(chunk: &[u8; 16]) -> std::arch::x86_64::__m128i {
    // SAFETY: an unaligned load of exactly the 16 bytes `chunk` borrows.
    unsafe { std::arch::x86_64::_mm_loadu_si128(chunk.as_ptr().cast()) }
}

#[cfg(target_arch = "x86_64")]
fn eq_mask16(chunk: &[u8; 16], target: u8) -> u16 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set1_epi8};
    let v = load(chunk);
    // SAFETY: SSE2 intrinsics on registers; SSE2 is always present on x86_64.
    unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(target as i8))) as u16 }
}

/// Bits of the quotes, backslashes and control characters (below 0x20) of `chunk`.
#[cfg(target_arch = "x86_64")]
fn string_stop_mask16(chunk: &[u8; 16]) -> u16 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let v = load(chunk);
    // SAFETY: SSE2 intrinsics on registers; SSE2 is always present on x86_64.
    unsafe {
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        let low = _mm_set1_epi8(0x1f);
        let control = _mm_cmpeq_epi8(_mm_max_epu8(v, low), low);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u16
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn eq_mask16(chunk: &[u8; 16], target: u8) -> u16 {
    let mut m = 0u16;
    for (i, &b) in chunk.iter().enumerate() {
        m |= u16::from(b == target) << i;
    }
    m
}

#[cfg(not(target_arch = "x86_64"))]
fn string_stop_mask16(chunk: &[u8; 16]) -> u16 {
    let mut m = 0u16;
    for (i, &b) in chunk.iter().enumerate() {
        m |= u16::from(b == b'"' || b == b'\\' || b < 0x20) << i;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference_len(b: &[u8]) -> Option<usize> {
        let at = b
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        (b[at] >= 0x20).then_some(at)
    }

    proptest! {
        #[test]
        fn string_len_matches_a_plain_loop(
            body in proptest::collection::vec(prop_oneof![0x20u8..=0xff, Just(b'"'), Just(b'\\'), 0u8..0x20], 0..80),
        ) {
            prop_assert_eq!(string_len(&body), reference_len(&body));
        }

        #[test]
        fn block_masks_match_a_plain_loop(block in proptest::array::uniform32(any::<u8>()), more in proptest::array::uniform32(any::<u8>()), t in any::<[u8; 4]>()) {
            let mut b = [0u8; 64];
            b[..32].copy_from_slice(&block);
            b[32..].copy_from_slice(&more);
            let got = block_masks(&b, t);
            for (k, &target) in t.iter().enumerate() {
                let want = b.iter().enumerate().fold(0u64, |m, (i, &c)| m | (u64::from(c == target) << i));
                prop_assert_eq!(got[k], want);
            }
        }
    }

    #[test]
    fn string_len_examples() {
        assert_eq!(string_len(b"abc\"rest"), Some(3));
        assert_eq!(string_len(b"0123456789abcdefghij\\n"), Some(20));
        assert_eq!(string_len(b"0123456789abcdefghij\x01\""), None);
        assert_eq!(string_len("é€\"".as_bytes()), Some(5));
        assert_eq!(string_len(b"no end"), None);
    }
}
