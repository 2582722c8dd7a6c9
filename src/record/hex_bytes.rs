//! Byte fields as hex strings in human-readable formats (JSON output of `ctl`) and as raw
//! bytes in MessagePack.

use serde::{de::Error, Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer, T: AsRef<[u8]>>(bytes: T, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&hex::encode(bytes.as_ref()))
    } else {
        s.serialize_bytes(bytes.as_ref())
    }
}

pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(d: D) -> Result<T, D::Error> {
    let bytes = if d.is_human_readable() {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(D::Error::custom)?
    } else {
        serde_bytes::ByteBuf::deserialize(d)?.into_vec()
    };
    T::try_from(bytes).map_err(|_| D::Error::custom("wrong byte length"))
}
