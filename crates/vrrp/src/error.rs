//! Errors of the VRRP core: packet decoding (an event the instance counts, never a
//! panic). Socket errors are the daemon's (vrrp::io).

use serde::{Deserialize, Serialize};

/// Why a received packet could not be decoded (RFC 5798 §7.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecodeError {
    #[error("truncated: {len} bytes, need {need}")]
    Truncated { len: usize, need: usize },
    #[error("too long: {len} bytes, the address count gives {need}")]
    TooLong { len: usize, need: usize },
    #[error("address count 0 (RFC 5798 §5.2.5: the minimum is 1)")]
    ZeroCount,
    #[error("unknown VRRP version {0}")]
    UnknownVersion(u8),
    #[error("unknown VRRP packet type {0}")]
    UnknownType(u8),
    #[error("virtual router id 0 is invalid")]
    ZeroVrid,
    #[error("advertisement interval 0 is invalid")]
    ZeroInterval,
    #[error("VRRPv2 received over IPv6")]
    V2OverIpv6,
    #[error("bad checksum {got:#06x}, expected {expected:#06x}")]
    BadChecksum { got: u16, expected: u16 },
}

impl DecodeError {
    /// Short stable name used as a counter label.
    pub fn counter(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } | DecodeError::TooLong { .. } | DecodeError::ZeroCount => {
                "packet_length"
            }
            DecodeError::UnknownVersion(_) => "version",
            DecodeError::UnknownType(_) => "type",
            DecodeError::ZeroVrid => "vrid",
            DecodeError::ZeroInterval => "interval",
            DecodeError::V2OverIpv6 => "version",
            DecodeError::BadChecksum { .. } => "checksum",
        }
    }
}
