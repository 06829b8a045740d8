//! DNS responses from the network (the dns health check): `decode_response` on
//! arbitrary bytes, then the check's verdict on what decodes. A reply must give a
//! response or an error, never a panic, and the decoded answers lie within it.
#![no_main]

use std::net::IpAddr;

use hafront::checks::dns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = dns::decode_response(data) else {
        return;
    };
    assert_eq!(r.id, u16::from_be_bytes([data[0], data[1]]));
    let rdata: usize = r.answers.iter().map(|a| a.rdata.len()).sum();
    assert!(
        rdata <= data.len(),
        "{rdata} bytes of answers in a {}-byte reply",
        data.len()
    );
    let expect: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
    for qtype in [dns::TYPE_A, dns::TYPE_AAAA, dns::TYPE_ANY, 15] {
        let _ = dns::check_response(&r, qtype, &[]);
        let _ = dns::check_response(&r, qtype, &expect[..1]);
        let _ = dns::check_response(&r, qtype, &expect);
    }
    for a in &r.answers {
        if let Some(addr) = a.addr() {
            assert_eq!(addr.is_ipv6(), a.rtype == dns::TYPE_AAAA);
        }
    }
});
