//! How delivery payloads are stored in the queue: LZ4 blocks (webhook JSON repeats its URL
//! prefixes and shrinks several-fold), compressed on the HTTP threads so the single queue
//! writer moves a fraction of the bytes through SQLite's WAL and checkpoints. Payloads that
//! would not shrink are stored as they came.

use crate::github::events::MAX_PAYLOAD_BYTES;

/// Smaller payloads are stored as they came: the saving would not pay for the work.
const MIN_COMPRESSED_LEN: usize = 512;

/// Column value of an LZ4-compressed payload (4-byte little-endian length, then the block).
/// Rows without a codec hold the payload as it came.
pub const LZ4: &str = "lz4";

/// Column value of a processed delivery whose payload was dropped after the retention
/// period (see `JobStore::prune_payloads`).
pub const PRUNED: &str = "pruned";

/// A payload ready for the `payload` and `payload_codec` columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayload {
    pub bytes: Vec<u8>,
    pub codec: Option<&'static str>,
}

/// A stored payload that cannot be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadDecodeError {
    #[error("the payload was dropped after the retention period")]
    Pruned,
    #[error("unknown payload codec {0:?}")]
    UnknownCodec(String),
    #[error("compressed payload is {0} bytes, too short for its length header")]
    Truncated(usize),
    #[error("compressed payload claims {0} bytes, over the 25 MB webhook limit")]
    TooLarge(usize),
    #[error("compressed payload is corrupt: {0}")]
    Corrupt(String),
}

/// Compresses a payload when that makes it smaller.
pub fn encode(payload: &[u8]) -> StoredPayload {
    if payload.len() >= MIN_COMPRESSED_LEN {
        let packed = lz4_flex::block::compress_prepend_size(payload);
        if packed.len() < payload.len() {
            return StoredPayload {
                bytes: packed,
                codec: Some(LZ4),
            };
        }
    }
    StoredPayload {
        bytes: payload.to_vec(),
        codec: None,
    }
}

/// Reads a stored payload back; the declared length is checked before anything is allocated.
pub fn decode(stored: Vec<u8>, codec: Option<&str>) -> Result<Vec<u8>, PayloadDecodeError> {
    match codec {
        None => Ok(stored),
        Some(LZ4) => {
            let header: [u8; 4] = stored
                .get(..4)
                .and_then(|h| h.try_into().ok())
                .ok_or(PayloadDecodeError::Truncated(stored.len()))?;
            let declared = u32::from_le_bytes(header) as usize;
            if declared > MAX_PAYLOAD_BYTES {
                return Err(PayloadDecodeError::TooLarge(declared));
            }
            let mut out = vec![0u8; declared];
            let written = lz4_flex::block::decompress_into(&stored[4..], &mut out)
                .map_err(|e| PayloadDecodeError::Corrupt(e.to_string()))?;
            if written != declared {
                return Err(PayloadDecodeError::Corrupt(format!(
                    "decompressed to {written} bytes, header says {declared}"
                )));
            }
            Ok(out)
        }
        Some(PRUNED) => Err(PayloadDecodeError::Pruned),
        Some(other) => Err(PayloadDecodeError::UnknownCodec(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_or_incompressible_payloads_are_stored_as_they_came() {
        assert_eq!(encode(b"{}").codec, None);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        let stored = encode(&noise);
        assert_eq!(stored.codec, None);
        assert_eq!(stored.bytes, noise);
    }

    /// JSON-like text with the repetition of a webhook payload.
    fn payload_like() -> Vec<u8> {
        (0..200)
            .map(|i| {
                format!(r#"{{"id":{i},"url":"https://api.github.com/repos/o/r/issues/{i}"}},"#)
            })
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn repetitive_json_round_trips_smaller() {
        let payload = payload_like();
        let stored = encode(&payload);
        assert_eq!(stored.codec, Some(LZ4));
        assert!(stored.bytes.len() * 3 < payload.len());
        assert_eq!(decode(stored.bytes, stored.codec).unwrap(), payload);
    }

    #[test]
    fn damaged_rows_are_typed_errors() {
        let mut stored = encode(&payload_like()).bytes;
        assert_eq!(
            decode(stored[..3].to_vec(), Some(LZ4)),
            Err(PayloadDecodeError::Truncated(3))
        );
        let mut huge = stored.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(huge, Some(LZ4)),
            Err(PayloadDecodeError::TooLarge(_))
        ));
        stored.truncate(stored.len() / 2);
        assert!(matches!(
            decode(stored, Some(LZ4)),
            Err(PayloadDecodeError::Corrupt(_))
        ));
        assert_eq!(
            decode(vec![1], Some("zstd")),
            Err(PayloadDecodeError::UnknownCodec("zstd".into()))
        );
    }

    proptest! {
        #[test]
        fn any_payload_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..4096),
                                   repeat in 1usize..8) {
            let payload = payload.repeat(repeat);
            let stored = encode(&payload);
            prop_assert_eq!(decode(stored.bytes, stored.codec).unwrap(), payload);
        }

        #[test]
        fn any_damage_is_an_error_or_a_bounded_payload(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(out) = decode(bytes, Some(LZ4)) {
                prop_assert!(out.len() <= MAX_PAYLOAD_BYTES);
            }
        }
    }
}
