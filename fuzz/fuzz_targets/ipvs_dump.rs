//! Netlink replies from the kernel's IPVS family: the in-place dump reader
//! (`ipvs::dump`, what the reconciler uses) and the message codec (`ipvs::message`,
//! `ipvs::nlas`) on arbitrary bytes of a whole netlink message.
//!
//! Checked: neither panics; what the codec parses re-emits, and parses and
//! re-emits again to the same bytes; and when the codec parses a reply, reading its re-emitted attributes
//! in place gives what reading the bytes themselves gives (as
//! daemon/tests/ipvs_codec.rs checks on mutated captures).
#![no_main]

use hafront::ipvs::constants::{IPVS_CMD_ATTR_DEST, IPVS_CMD_ATTR_SERVICE};
use hafront::ipvs::dump::{self, EntryError};
use hafront::ipvs::message::IpvsMessage;
use libfuzzer_sys::fuzz_target;
use netlink_packet_core::{Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;

/// Netlink header (16) + generic netlink header (4).
const HEADERS: usize = 20;

fn parse(bytes: &[u8]) -> Option<(NetlinkHeader, IpvsMessage)> {
    let nl = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(bytes).ok()?;
    match nl.payload {
        NetlinkPayload::InnerMessage(g) => Some((nl.header, g.payload)),
        _ => None,
    }
}

fn emit(header: NetlinkHeader, msg: IpvsMessage) -> Vec<u8> {
    let mut g = GenlMessage::from_payload(msg);
    g.set_resolved_family_id(header.message_type);
    let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(g));
    nl.header.flags = header.flags;
    nl.header.sequence_number = header.sequence_number;
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

/// What the in-place reader makes of a reply's payload, both families for a
/// destination.
fn read_in_place(payload: &[u8]) -> String {
    let show = |r: Result<String, EntryError>| match r {
        Ok(v) => v,
        Err(EntryError::Unsupported(e)) => format!("unsupported: {e}"),
        Err(EntryError::Malformed(_)) => "malformed".into(),
    };
    match (
        dump::nested(payload, IPVS_CMD_ATTR_SERVICE),
        dump::nested(payload, IPVS_CMD_ATTR_DEST),
    ) {
        (Err(_), _) | (_, Err(_)) => "malformed".into(),
        (Ok(Some(s)), _) => show(dump::service(s).map(|v| format!("{v:?}"))),
        (_, Ok(Some(d))) => format!(
            "{} / {}",
            show(dump::dest(d, false).map(|v| format!("{v:?}"))),
            show(dump::dest(d, true).map(|v| format!("{v:?}")))
        ),
        (Ok(None), Ok(None)) => "nothing".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let in_place = read_in_place(data.get(HEADERS..).unwrap_or_default());
    let Some((header, msg)) = parse(data) else {
        return;
    };
    // The codec reads the message's own length; bytes after it are another message.
    let len = (header.length as usize).min(data.len());
    let in_place = if len == data.len() {
        in_place
    } else {
        read_in_place(data.get(HEADERS..len).unwrap_or_default())
    };
    let wire = emit(header, msg.clone());
    let (_, back) = parse(&wire).unwrap_or_else(|| panic!("re-emitted {msg:?} does not parse: {wire:02x?}"));
    assert_eq!(back.cmd, msg.cmd);
    // Emitting is a fixed point after one round, not the identity: an unknown
    // attribute with both NLA_F_NESTED and NLA_F_NET_BYTEORDER comes back without
    // the second (netlink-packet-core 0.9's DefaultNla: setting one flag clears the
    // other). The kernel sends no such attribute and hafront re-emits none it read.
    assert_eq!(
        emit(header, back),
        wire,
        "re-emitting the re-emitted message differs"
    );
    let mut attrs = vec![0u8; msg.attrs.as_slice().buffer_len()];
    msg.attrs.as_slice().emit(&mut attrs);
    assert_eq!(
        in_place,
        read_in_place(&attrs),
        "in-place reader and codec disagree"
    );
});
