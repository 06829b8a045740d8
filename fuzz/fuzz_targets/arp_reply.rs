//! ARP packets on the link (the split-brain probe): `foreign_holder` on arbitrary
//! bytes, for a fixed VIP and for the sender address the packet carries (so the
//! matching branch is reached). Never a panic; a holder it reports is the packet's
//! sender hardware address, not ours, claiming the VIP.
#![no_main]

use std::net::Ipv4Addr;

use hafront::splitbrain::arp::{foreign_holder, probe_packet};
use libfuzzer_sys::fuzz_target;

const OURS: [u8; 6] = [2, 0, 0, 0, 0, 1];

fuzz_target!(|data: &[u8]| {
    let mut vips = vec![Ipv4Addr::new(192, 0, 2, 100)];
    if let Some(spa) = data.get(14..18) {
        vips.push(Ipv4Addr::new(spa[0], spa[1], spa[2], spa[3]));
    }
    for vip in vips {
        if let Some(mac) = foreign_holder(data, vip, OURS) {
            assert_ne!(mac, OURS);
            assert_eq!(&data[8..14], &mac);
            assert_eq!(&data[14..18], &vip.octets());
        }
        // Another node's probe for the VIP names no holder (its sender IP is 0).
        if !vip.is_unspecified() {
            assert_eq!(
                foreign_holder(&probe_packet([2, 0, 0, 0, 0, 9], vip), vip, OURS),
                None
            );
        }
    }
});
