//! How keys and values cross processes: CBOR (self-describing, so a value written by one
//! build of a service is either read by the next or cleanly rejected as a miss).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Error;

/// CBOR bytes of `item`.
pub(crate) fn encode<T: Serialize + ?Sized>(item: &T) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(item, &mut bytes).map_err(|e| Error::Encode(e.to_string()))?;
    Ok(bytes)
}

/// Nesting allowed in a decoded value: deep enough for real data, shallow enough that a
/// hostile value cannot exhaust the stack.
const MAX_DEPTH: usize = 128;

/// Decodes a value read from Redis. A value longer than `limit`, corrupt, or of another
/// shape (a foreign writer, an older build) is `None`, logged: a miss, never a panic.
/// Allocation is bounded by the input, which is bounded by `limit`.
pub(crate) fn decode<V: DeserializeOwned>(bytes: &[u8], limit: usize) -> Option<V> {
    if bytes.len() > limit {
        tracing::warn!(
            len = bytes.len(),
            limit,
            "dogpile-redis: value over the size limit, treated as a miss"
        );
        return None;
    }
    let mut rest = bytes;
    match ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH) {
        // Trailing bytes: not one CBOR item, so not something this crate wrote.
        Ok(_) if !rest.is_empty() => {
            tracing::warn!(
                trailing = rest.len(),
                "dogpile-redis: value with trailing bytes, treated as a miss"
            );
            None
        }
        Ok(value) => Some(value),
        Err(err) => {
            tracing::warn!(%err, len = bytes.len(), "dogpile-redis: undecodable value, treated as a miss");
            None
        }
    }
}

/// The stable fingerprint of a key: SHA-1 of its type's name and its CBOR bytes, in hex.
/// The same key gives the same fingerprint in every process and build with the same key
/// type; two key types that encode alike (`UserId(7)`, `OrderId(7)`) give two (R4).
pub(crate) fn fingerprint(type_name: &str, key_bytes: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(type_name.as_bytes());
    sha.update(&[0]);
    sha.update(key_bytes);
    sha.digest().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_value_round_trips() {
        let value: BTreeMap<String, Vec<u32>> = [("a".to_string(), vec![1, 2, 3])].into();
        let bytes = encode(&value).unwrap();
        assert_eq!(
            decode::<BTreeMap<String, Vec<u32>>>(&bytes, 1024),
            Some(value)
        );
    }

    #[test]
    fn corrupt_foreign_and_oversized_values_are_misses() {
        // Truncated CBOR.
        let bytes = encode(&"a long enough string").unwrap();
        assert_eq!(decode::<String>(&bytes[..bytes.len() - 3], 1024), None);
        // Another type written under the same key by another build.
        assert_eq!(decode::<u64>(&encode(&"text").unwrap(), 1024), None);
        // Over the limit, even though it would decode.
        assert_eq!(decode::<String>(&bytes, bytes.len() - 1), None);
        assert!(decode::<String>(&bytes, bytes.len()).is_some());
        // A pickle, say: arbitrary bytes.
        assert_eq!(decode::<Vec<String>>(b"\x80\x04\x95garbage", 1024), None);
    }

    #[test]
    fn a_declared_huge_length_does_not_allocate_it() {
        // A byte string claiming 2^62 bytes, followed by 3: must fail, not allocate.
        let hostile = [0x5b, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3];
        assert_eq!(decode::<serde_bytes_like::Bytes>(&hostile, 1024), None);
        // An array claiming 2^62 elements.
        let hostile = [0x9b, 0x40, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(decode::<Vec<u64>>(&hostile, 1024), None);
        // Nesting deeper than the limit.
        let deep = vec![0x81; 10_000];
        assert_eq!(decode::<Vec<u64>>(&deep, 1 << 20), None);
    }

    mod serde_bytes_like {
        /// Deserializes through `deserialize_byte_buf`, the path that reads a byte string.
        #[derive(Debug, PartialEq)]
        pub struct Bytes(pub Vec<u8>);
        impl<'de> serde::Deserialize<'de> for Bytes {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl serde::de::Visitor<'_> for Visit {
                    type Value = Bytes;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                        Ok(Bytes(v))
                    }
                    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                        Ok(Bytes(v.to_vec()))
                    }
                }
                d.deserialize_byte_buf(Visit)
            }
        }
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let key = |n: u32| encode(&("user", n)).unwrap();
        let a = fingerprint("K", &key(7));
        assert_eq!(a, fingerprint("K", &key(7)));
        assert_ne!(a, fingerprint("K", &key(8)));
        assert_ne!(a, fingerprint("L", &key(7)));
        assert_eq!(a.len(), 40);
    }
}
