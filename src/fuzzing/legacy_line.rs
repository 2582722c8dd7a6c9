//! Target `legacy_line`: arbitrary bytes as request lines of the chapter's JSON-lines
//! protocol, through the server's own parser ([`LegacyCommand::parse_line`]).

use crate::bootstrap::legacy_line::LegacyCommand;
use crate::record::PeerAddress;

/// Most lines parsed from one input.
const MAX_LINES: usize = 64;

/// The target body.
pub fn legacy_line(data: &[u8]) {
    check(data);
    for line in data.split_inclusive(|b| *b == b'\n').take(MAX_LINES) {
        check(line);
    }
}

/// Parses `line`; an accepted command carries a valid address and parses the same again
/// from its canonical line.
fn check(line: &[u8]) {
    let command = match LegacyCommand::parse_line(line) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "a reply is one line");
            return;
        }
    };
    let (kind, payload) = match &command {
        LegacyCommand::GetPeers => ("GET_PEERS", ""),
        LegacyCommand::Register(a) => ("REGISTER", a.as_str()),
        LegacyCommand::Remove(a) => ("REMOVE", a.as_str()),
    };
    if !payload.is_empty() {
        assert!(
            PeerAddress::parse(payload).is_ok(),
            "accepted a bad address"
        );
    }
    let mut canonical = serde_json::json!({ "type": kind, "payload": payload })
        .to_string()
        .into_bytes();
    canonical.push(b'\n');
    assert_eq!(LegacyCommand::parse_line(&canonical), Ok(command));
}
