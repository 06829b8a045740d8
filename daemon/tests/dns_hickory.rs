//! The dns check's hand-written decoder (hafront::checks::dns) against the field's
//! library: responses built and encoded by `hickory-proto` (name compression, EDNS
//! OPT, TC, long TXT, every section filled) must decode to what hickory itself reads
//! back from the same bytes. Then random mutations of those messages: whatever
//! hickory accepts, ours must accept with the same header and answers.

use std::net::{Ipv4Addr, Ipv6Addr};

use hafront::checks::dns;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn rec(owner: &str, ttl: u32, rdata: RData) -> Record {
    Record::from_rdata(name(owner), ttl, rdata)
}

/// A response to `qname`/`qtype` as a server built with hickory sends it.
fn response(id: u16, qname: &str, qtype: RecordType, rcode: ResponseCode, answers: Vec<Record>) -> Message {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .set_recursion_available(true)
        .set_response_code(rcode)
        .add_query(Query::query(name(qname), qtype))
        .add_answers(answers);
    m
}

/// The cases: (what, message).
fn cases() -> Vec<(&'static str, Message)> {
    let www = "www.example.org.";
    let web = "web.example.org.";
    let a1 = rec(web, 300, RData::A(A(Ipv4Addr::new(192, 0, 2, 1))));
    let a2 = rec(web, 300, RData::A(A(Ipv4Addr::new(192, 0, 2, 2))));
    let cname = rec(www, 3600, RData::CNAME(CNAME(name(web))));
    let aaaa = rec(
        www,
        60,
        RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
    );
    let long_txt = rec(
        www,
        60,
        RData::TXT(TXT::new(vec![
            "v=spf1 ".repeat(36),
            "x".repeat(255),
            String::new(),
            "é".into(),
        ])),
    );
    let ns = rec("example.org.", 86400, RData::NS(NS(name("ns1.example.org."))));
    let soa = rec(
        "example.org.",
        900,
        RData::SOA(SOA::new(
            name("ns1.example.org."),
            name("hostmaster.example.org."),
            1,
            2,
            3,
            4,
            5,
        )),
    );
    let glue = rec(
        "ns1.example.org.",
        86400,
        RData::A(A(Ipv4Addr::new(198, 51, 100, 53))),
    );

    let mut out = Vec::new();
    out.push((
        "compressed CNAME chain, two A",
        response(
            1,
            www,
            RecordType::A,
            ResponseCode::NoError,
            vec![cname.clone(), a1.clone(), a2.clone()],
        ),
    ));
    let mut m = response(2, www, RecordType::A, ResponseCode::NoError, vec![a1.clone()]);
    m.add_name_server(ns.clone()).add_additional(glue.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(1232).set_dnssec_ok(true);
    m.set_edns(edns);
    out.push(("authority, glue and EDNS OPT", m));
    let mut m = response(3, www, RecordType::A, ResponseCode::NoError, vec![]);
    m.set_edns(Edns::new());
    m.set_response_code(ResponseCode::BADVERS);
    out.push(("extended RCODE BADVERS in OPT", m));
    let mut m = response(4, www, RecordType::A, ResponseCode::NXDomain, vec![]);
    m.add_name_server(soa.clone());
    out.push(("NXDOMAIN with SOA", m));
    out.push((
        "long TXT (over 512 bytes)",
        response(5, www, RecordType::TXT, ResponseCode::NoError, vec![long_txt]),
    ));
    out.push((
        "AAAA",
        response(
            6,
            www,
            RecordType::AAAA,
            ResponseCode::NoError,
            vec![aaaa.clone()],
        ),
    ));
    out.push((
        "MX with compressed exchange",
        response(
            7,
            "example.org.",
            RecordType::MX,
            ResponseCode::NoError,
            vec![rec(
                "example.org.",
                60,
                RData::MX(MX::new(10, name("mail.example.org."))),
            )],
        ),
    ));
    let mut m = response(8, www, RecordType::A, ResponseCode::NoError, vec![]);
    m.set_truncated(true);
    out.push(("TC, empty", m));
    let mut m = response(
        9,
        www,
        RecordType::A,
        ResponseCode::NoError,
        vec![cname, a1, a2, aaaa],
    );
    m.set_truncated(true);
    out.push(("TC with answers", m));
    let many: Vec<Record> = (0..200u8)
        .map(|i| rec(web, 1, RData::A(A(Ipv4Addr::new(203, 0, 113, i)))))
        .collect();
    out.push((
        "200 answers",
        response(10, web, RecordType::A, ResponseCode::NoError, many),
    ));
    out.push((
        "ServFail",
        response(11, web, RecordType::A, ResponseCode::ServFail, vec![]),
    ));
    out
}

/// Ours against hickory's reading of the same bytes.
fn compare(what: &str, bytes: &[u8], theirs: &Message) {
    let ours = dns::decode_response(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(ours.id, theirs.id(), "{what}: id");
    assert_eq!(ours.truncated, theirs.truncated(), "{what}: TC");
    assert_eq!(ours.rcode, u16::from(theirs.response_code()), "{what}: RCODE");
    assert_eq!(ours.answers.len(), theirs.answers().len(), "{what}: answer count");
    for (o, t) in ours.answers.iter().zip(theirs.answers()) {
        assert_eq!(o.rtype, u16::from(t.record_type()), "{what}: type");
        assert_eq!(o.class, u16::from(t.dns_class()), "{what}: class");
        assert_eq!(o.ttl, t.ttl(), "{what}: TTL");
        match t.data() {
            RData::A(a) => assert_eq!(o.addr(), Some(a.0.into()), "{what}"),
            RData::AAAA(a) => assert_eq!(o.addr(), Some(a.0.into()), "{what}"),
            RData::TXT(txt) => {
                let mut want = Vec::new();
                for s in txt.txt_data() {
                    want.push(s.len() as u8);
                    want.extend_from_slice(s);
                }
                assert_eq!(o.rdata, want, "{what}: TXT data");
            }
            _ => {}
        }
    }
}

#[test]
fn hickory_encoded_responses_decode_alike() {
    for (what, m) in cases() {
        let bytes = m.to_vec().unwrap();
        let theirs = Message::from_vec(&bytes).unwrap();
        compare(what, &bytes, &theirs);
    }
}

/// The check's verdicts on them: NOERROR with the queried type, else the RCODE's name
/// (BADVERS lives in the OPT record: reading the header alone says NOERROR).
#[test]
fn verdicts_on_hickory_responses() {
    let by_what: std::collections::HashMap<_, _> = cases().into_iter().collect();
    let verdict = |what: &str, qtype: u16, expect: &[std::net::IpAddr]| {
        let r = dns::decode_response(&by_what[what].to_vec().unwrap()).unwrap();
        dns::check_response(&r, qtype, expect)
    };
    let a1: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(
        verdict("compressed CNAME chain, two A", dns::TYPE_A, &[a1]),
        Ok(())
    );
    assert_eq!(
        verdict("authority, glue and EDNS OPT", dns::TYPE_A, &[a1]),
        Ok(())
    );
    assert_eq!(
        verdict("extended RCODE BADVERS in OPT", dns::TYPE_A, &[]),
        Err("rcode BADVERS".into())
    );
    assert_eq!(
        verdict("NXDOMAIN with SOA", dns::TYPE_A, &[]),
        Err("rcode NXDOMAIN".into())
    );
    assert_eq!(
        verdict("ServFail", dns::TYPE_A, &[]),
        Err("rcode SERVFAIL".into())
    );
    assert_eq!(verdict("long TXT (over 512 bytes)", 16, &[]), Ok(()));
}

/// Mutations: flip bytes of every case; where hickory still reads a message, ours must
/// too, alike (ours may accept more: it does not follow names it skips). Never a panic.
#[test]
fn mutated_responses_hickory_accepts_decode_alike() {
    let mut rng = fastrand::Rng::with_seed(18);
    let mut accepted = 0;
    for (what, m) in cases() {
        let base = m.to_vec().unwrap();
        for _ in 0..2000 {
            let mut b = base.clone();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..b.len());
                b[i] = rng.u8(..);
            }
            if rng.bool() {
                b.truncate(rng.usize(12..=b.len()));
            }
            let _ = dns::decode_response(&b);
            let Ok(theirs) = Message::from_vec(&b) else {
                continue;
            };
            if theirs.message_type() != MessageType::Response {
                continue;
            }
            accepted += 1;
            compare(&format!("{what} mutated {b:02x?}"), &b, &theirs);
        }
    }
    println!("{accepted} mutations read by hickory decode alike");
    assert!(accepted > 1000, "only {accepted} mutations were valid messages");
}
