//! [`LegacyCommand`]: one request line of the seed chapter's JSON-lines protocol, parsed and
//! checked without any I/O, so that the fuzzer and the server run the very same code.

use serde::Deserialize;

use crate::record::PeerAddress;

/// Longest request line accepted, newline included.
pub const MAX_LINE: usize = 64 * 1024;

/// What a valid line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyCommand {
    /// `{"type":"GET_PEERS"}`
    GetPeers,
    /// `{"type":"REGISTER","payload":"host:port"}` with a valid address.
    Register(String),
    /// `{"type":"REMOVE","payload":"host:port"}` with a valid address.
    Remove(String),
}

/// Why a line was refused. The `Display` text is the reply line the chapter's client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("Invalid request: line too long or truncated")]
    TooLongOrTruncated,
    #[error("Invalid request format: {0}")]
    Format(String),
    #[error("Invalid request type")]
    UnknownType,
    #[error("Invalid peer address: {0}")]
    BadAddress(String),
}

impl LineError {
    /// Whether the server closes the connection after replying: a line it cannot read
    /// means the client is not speaking the protocol, while a bad address is the client's
    /// data and the chapter's client may go on.
    pub fn closes(&self) -> bool {
        !matches!(self, Self::BadAddress(_))
    }
}

#[derive(Deserialize)]
struct LegacyRequest {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: String,
}

impl LegacyCommand {
    /// Parses one line as read up to and including its `\n` (at most [`MAX_LINE`] + 1
    /// bytes are ever read).
    ///
    /// # Errors
    /// A [`LineError`] naming what is wrong.
    pub fn parse_line(line: &[u8]) -> Result<Self, LineError> {
        if line.len() > MAX_LINE || !line.ends_with(b"\n") {
            return Err(LineError::TooLongOrTruncated);
        }
        let req: LegacyRequest =
            serde_json::from_slice(line).map_err(|e| LineError::Format(e.to_string()))?;
        match req.kind.as_str() {
            "GET_PEERS" => Ok(Self::GetPeers),
            "REGISTER" | "REMOVE" => {
                PeerAddress::parse(&req.payload)
                    .map_err(|e| LineError::BadAddress(e.to_string()))?;
                Ok(if req.kind == "REGISTER" {
                    Self::Register(req.payload)
                } else {
                    Self::Remove(req.payload)
                })
            }
            _ => Err(LineError::UnknownType),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chapters_requests_parse_and_junk_is_refused_with_its_reply() {
        let p = LegacyCommand::parse_line;
        assert_eq!(
            p(b"{\"type\":\"REGISTER\",\"payload\":\"localhost:3000\"}\n"),
            Ok(LegacyCommand::Register("localhost:3000".into()))
        );
        assert_eq!(
            p(b"{\"type\":\"GET_PEERS\",\"payload\":\"\"}\n"),
            Ok(LegacyCommand::GetPeers)
        );
        assert_eq!(
            p(b"{\"type\":\"GET_PEERS\"}"),
            Err(LineError::TooLongOrTruncated)
        );
        assert_eq!(p(b"{\"type\":\"X\"}\n"), Err(LineError::UnknownType));
        let bad = p(b"{\"type\":\"REMOVE\",\"payload\":\"a b\"}\n");
        assert!(matches!(&bad, Err(e) if !e.closes()), "{bad:?}");
        assert!(matches!(p(b"nope\n"), Err(LineError::Format(_))));
        let long = [vec![b' '; MAX_LINE], b"\n".to_vec()].concat();
        assert_eq!(p(&long), Err(LineError::TooLongOrTruncated));
    }
}
