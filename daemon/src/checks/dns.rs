//! A minimal DNS message codec for the dns check (RFC 1035 §4): one question out,
//! the header and answer records in (the authority and additional sections are
//! walked for an EDNS OPT record's extended RCODE, RFC 6891 §6.1.3). No I/O. Names in
//! answers are skipped (with compression pointers), not decompressed: the check only
//! needs types and data. Kept by hand rather than `hickory-proto`, and tested against
//! it (daemon/tests/dns_hickory.rs): see docs/architecture.md, "Field libraries".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_ANY: u16 = 255;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

/// Record types accepted by name in `query_type` (also `TYPE<n>`).
pub const QTYPES: &[(&str, u16)] = &[
    ("A", TYPE_A),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", TYPE_AAAA),
    ("SRV", 33),
    ("CAA", 257),
    ("ANY", TYPE_ANY),
];

pub fn qtype_from_str(s: &str) -> Option<u16> {
    let up = s.trim().to_ascii_uppercase();
    if let Some(n) = up.strip_prefix("TYPE") {
        return n.parse::<u16>().ok().filter(|n| *n != 0);
    }
    QTYPES.iter().find(|(n, _)| *n == up).map(|(_, t)| *t)
}

pub fn qtype_name(t: u16) -> String {
    QTYPES
        .iter()
        .find(|(_, v)| *v == t)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| format!("TYPE{t}"))
}

pub fn rcode_name(rcode: u16) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        16 => "BADVERS".into(),
        n => format!("RCODE{n}"),
    }
}

fn labels(name: &str) -> impl Iterator<Item = &str> {
    name.trim_end_matches('.').split('.').filter(|l| !l.is_empty())
}

/// A name that fits the wire format: labels of 1..63 bytes, 255 bytes in all.
pub fn check_name(name: &str) -> Result<(), String> {
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() {
        return if name == "." {
            Ok(())
        } else {
            Err("is empty".into())
        };
    }
    if trimmed.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err(format!("{name:?}: each label must be 1..63 bytes"));
    }
    if !trimmed.is_ascii() {
        return Err(format!(
            "{name:?}: write internationalized names in their xn-- form"
        ));
    }
    if trimmed.len() + 2 > 255 {
        return Err(format!("{name:?} is longer than 253 characters"));
    }
    Ok(())
}

/// A standard query with recursion desired, for `name` (absolute) and `qtype`, class IN.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(18 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00]); // QR=0 opcode=0 RD=1
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QD=1 AN=NS=AR=0
    for l in labels(name) {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    m
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

impl Record {
    /// The address of an A or AAAA record.
    pub fn addr(&self) -> Option<IpAddr> {
        match (self.rtype, self.rdata.len()) {
            (TYPE_A, 4) => Some(IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(&self.rdata[..]).ok()?,
            ))),
            (TYPE_AAAA, 16) => Some(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(&self.rdata[..]).ok()?,
            ))),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    /// With an OPT record's upper 8 bits (12 bits in all).
    pub rcode: u16,
    pub truncated: bool,
    pub answers: Vec<Record>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message too short")]
    Short,
    #[error("not a response (QR bit clear)")]
    NotResponse,
    #[error("malformed name")]
    BadName,
}

/// Skips a (possibly compressed) name starting at `pos`; returns the offset after it.
fn skip_name(m: &[u8], mut pos: usize) -> Result<usize, DecodeError> {
    for _ in 0..128 {
        let len = *m.get(pos).ok_or(DecodeError::Short)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(pos + 1),
            0x00 => pos += 1 + len as usize,
            0xC0 => {
                m.get(pos + 1).ok_or(DecodeError::Short)?;
                return Ok(pos + 2);
            }
            _ => return Err(DecodeError::BadName),
        }
    }
    Err(DecodeError::BadName)
}

fn u16_at(m: &[u8], pos: usize) -> Result<u16, DecodeError> {
    Ok(u16::from_be_bytes([
        *m.get(pos).ok_or(DecodeError::Short)?,
        *m.get(pos + 1).ok_or(DecodeError::Short)?,
    ]))
}

/// Decodes the header and the answer section.
pub fn decode_response(m: &[u8]) -> Result<Response, DecodeError> {
    if m.len() < 12 {
        return Err(DecodeError::Short);
    }
    let id = u16_at(m, 0)?;
    if m[2] & 0x80 == 0 {
        return Err(DecodeError::NotResponse);
    }
    let truncated = m[2] & 0x02 != 0;
    let mut rcode = u16::from(m[3] & 0x0F);
    let qd = u16_at(m, 4)?;
    let an = u16_at(m, 6)?;
    let others = u32::from(u16_at(m, 8)?) + u32::from(u16_at(m, 10)?);
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(m, pos)? + 4;
    }
    // Answers, then authority and additional (where only an OPT record matters).
    // A message cut short, as TC says, counts for the records it holds whole (the
    // probe asks again over TCP).
    let mut answers = Vec::with_capacity(an.min(64) as usize);
    for i in 0..u32::from(an) + others {
        let (rec, next) = match record(m, pos) {
            Ok(r) => r,
            Err(DecodeError::Short) if truncated => break,
            Err(e) => return Err(e),
        };
        pos = next;
        if i < u32::from(an) {
            answers.push(rec);
        } else if rec.rtype == TYPE_OPT {
            rcode |= u16::from((rec.ttl >> 24) as u8) << 4;
        }
    }
    Ok(Response {
        id,
        rcode,
        truncated,
        answers,
    })
}

/// One resource record at `pos`; returns it and the offset after it.
fn record(m: &[u8], pos: usize) -> Result<(Record, usize), DecodeError> {
    let pos = skip_name(m, pos)?;
    let rtype = u16_at(m, pos)?;
    let class = u16_at(m, pos + 2)?;
    let ttl = (u16_at(m, pos + 4)? as u32) << 16 | u16_at(m, pos + 6)? as u32;
    let len = u16_at(m, pos + 8)? as usize;
    let start = pos + 10;
    let rdata = m.get(start..start + len).ok_or(DecodeError::Short)?.to_vec();
    Ok((
        Record {
            rtype,
            class,
            ttl,
            rdata,
        },
        start + len,
    ))
}

/// The dns check's verdict on a response: NOERROR, at least one answer of the
/// queried type (any type for ANY), and every expected address among the answers.
pub fn check_response(r: &Response, qtype: u16, expect: &[IpAddr]) -> Result<(), String> {
    if r.rcode != 0 {
        return Err(format!("rcode {}", rcode_name(r.rcode)));
    }
    let matching: Vec<&Record> = r
        .answers
        .iter()
        .filter(|a| qtype == TYPE_ANY || a.rtype == qtype)
        .collect();
    if matching.is_empty() {
        return Err(format!("no {} record in the answer", qtype_name(qtype)));
    }
    let got: Vec<IpAddr> = matching.iter().filter_map(|a| a.addr()).collect();
    let missing: Vec<String> = expect
        .iter()
        .filter(|e| !got.contains(e))
        .map(|e| e.to_string())
        .collect();
    if !missing.is_empty() {
        let got: Vec<String> = got.iter().map(|g| g.to_string()).collect();
        return Err(format!(
            "answer [{}] lacks expected [{}]",
            got.join(", "),
            missing.join(", ")
        ));
    }
    Ok(())
}

/// Whether response `m` carries the one question of `query` (as [`encode_query`]
/// wrote it: the question is never compressed). Names compare without case.
pub fn same_question(query: &[u8], m: &[u8]) -> bool {
    let q = query.get(12..).unwrap_or_default();
    m.get(4..6) == Some(&[0, 1][..]) && m.get(12..12 + q.len()).is_some_and(|r| r.eq_ignore_ascii_case(q))
}
