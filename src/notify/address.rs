//! Which addresses a webhook may reach: global ones only, by allow-list.
//!
//! IPv4: every address except the blocks of IANA's IPv4 Special-Purpose Address Registry that are
//! not globally reachable (and, to keep one simple rule, all of 192.0.0.0/24 and the deprecated
//! 6to4 relay anycast 192.88.99.0/24).
//!
//! IPv6: only global unicast, 2000::/3, minus what IANA's IPv6 Special-Purpose Address Registry
//! sets apart inside it: 2001::/23 (IETF protocol assignments, which hold Teredo 2001::/32,
//! benchmarking, ORCHID), 2001:db8::/32 and 3fff::/20 (documentation), and 2002::/16 (6to4,
//! whose relays would carry the packet to an embedded IPv4 address). So everything outside
//! 2000::/3 is refused with it: unspecified, loopback, IPv4-compatible `::a.b.c.d`, NAT64
//! 64:ff9b::/96 and 64:ff9b:1::/48, discard 100::/64, unique local fc00::/7, link-local
//! fe80::/10, site-local fec0::/10, multicast. The one exception is an IPv4-mapped address
//! `::ffff:a.b.c.d`: a socket sends it to the IPv4 address, so it is judged as that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// True when a webhook may connect to `ip`.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_global_v4(v4),
            None => is_global_v6(v6),
        },
    }
}

/// IPv4 blocks that are not globally reachable: (network, prefix length).
const V4_NOT_GLOBAL: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),       // "this network"
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (carrier-grade NAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, cloud metadata
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation TEST-NET-1
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation TEST-NET-2
    ([203, 0, 113, 0], 24),  // documentation TEST-NET-3
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and the limited broadcast 255.255.255.255
];

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    !V4_NOT_GLOBAL.iter().any(|(net, len)| {
        let mask = u32::MAX << (32 - u32::from(*len));
        ip & mask == u32::from_be_bytes(*net)
    })
}

/// Blocks inside 2000::/3 that are not globally reachable: (network, prefix length).
const V6_NOT_GLOBAL: &[(u128, u8)] = &[
    (0x2001_0000 << 96, 23), // IETF protocol assignments (Teredo, benchmarking, ORCHID ...)
    (0x2001_0db8 << 96, 32), // documentation
    (0x2002 << 112, 16),     // 6to4
    (0x3fff << 112, 20),     // documentation
];

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let ip = u128::from(ip);
    let in_block = |net: u128, len: u8| ip & (u128::MAX << (128 - u32::from(len))) == net;
    in_block(0x2000 << 112, 3) && !V6_NOT_GLOBAL.iter().any(|(net, len)| in_block(*net, *len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_addresses_are_global() {
        let table: &[(&str, bool)] = &[
            // IPv4
            ("93.184.215.14", true),
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("192.0.1.1", true),
            ("192.31.196.1", true),
            ("198.17.255.255", true),
            ("198.20.0.0", true),
            ("223.255.255.255", true),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("10.0.0.1", false),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            ("169.254.169.254", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.0.0.9", false),
            ("192.0.0.170", false),
            ("192.0.2.1", false),
            ("192.88.99.1", false),
            ("192.168.1.1", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            // IPv6
            ("2606:4700:4700::1111", true),
            ("2a00:1450:4001:80b::200e", true),
            ("2001:200::1", true),
            ("2001:4860:4860::8888", true),
            ("3ffe::1", true),
            ("::", false),
            ("::1", false),
            ("::7f00:1", false),
            ("::8.8.8.8", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::808:808", false),
            ("64:ff9b:1::a00:1", false),
            ("100::1", false),
            ("2001::1", false),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            ("2001:2::1", false),
            ("2001:10::1", false),
            ("2001:1ff:ffff::1", false),
            ("2001:db8::1", false),
            ("2002:7f00:1::1", false),
            ("2002:a00:1::", false),
            ("2002:808:808::1", false),
            ("3fff::1", false),
            ("fc00::1", false),
            ("fd00:ec2::254", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            ("feff::1", false),
            ("ff02::1", false),
            ("ff0e::1", false),
            ("4000::1", false),
            ("1fff:ffff::1", false),
        ];
        for (text, global) in table {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(is_global(ip), *global, "{text}");
        }
    }
}
