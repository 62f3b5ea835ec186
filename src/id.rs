//! 32-byte identifiers: keyed BLAKE3 ids of blobs, plain BLAKE3 content addresses of objects.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A 256-bit identifier printed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; 32]);

/// Hex in human-readable formats (JSON), 32 raw bytes in binary ones (postcard).
impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            Id::from_hex(&text).map_err(serde::de::Error::custom)
        } else {
            Ok(Id(<[u8; 32]>::deserialize(d)?))
        }
    }
}

impl Id {
    /// The content address of stored bytes (unkeyed BLAKE3): what object names are.
    pub fn of_bytes(bytes: &[u8]) -> Id {
        Id(*blake3::hash(bytes).as_bytes())
    }

    pub fn random() -> Id {
        let mut b = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        Id(b)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, as shown in listings.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// Parses exactly 64 hex digits.
    ///
    /// # Errors
    /// `InvalidInput` naming the text when it is not 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Id> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(text, &mut b)
            .map_err(|_| Error::invalid(format!("'{text}' is not an id: expected 64 hex digits")))?;
        Ok(Id(b))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_hex_and_postcard_is_raw() {
        let id = Id::of_bytes(b"x");
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{}\"", id.to_hex()));
        assert_eq!(serde_json::from_str::<Id>(&serde_json::to_string(&id).unwrap()).unwrap(), id);
        let bin = postcard::to_stdvec(&id).unwrap();
        assert_eq!(bin.len(), 32);
        assert_eq!(postcard::from_bytes::<Id>(&bin).unwrap(), id);
    }

    #[test]
    fn hex_round_trip_and_errors_quote_input() {
        let id = Id::of_bytes(b"abc");
        assert_eq!(Id::from_hex(&id.to_hex()).unwrap(), id);
        let err = Id::from_hex("xyz").unwrap_err().to_string();
        assert!(err.contains("'xyz'"), "{err}");
    }
}
