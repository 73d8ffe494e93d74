//! The address a per-address bound counts (sign-ups, failed logins, invented
//! credentials, OAuth registrations and document fetches). An IPv4 address
//! counts as itself. An IPv6 address counts as its /64: one subscriber line
//! or host is routinely given a whole /64 (RFC 6177), so counting each of its
//! 2^64 addresses apart would give one attacker an unbounded allowance. An
//! IPv4-mapped IPv6 address counts as the IPv4 address it maps.
//!
//! Only bounds use this: key allowlists, audit rows and notices keep the
//! address as sent.

use std::net::{IpAddr, Ipv6Addr};

/// The bucket `ip` counts in: `203.0.113.9`, or `2001:db8:1:2::/64`. Text
/// that is not an address comes back as it is.
pub fn bound_key(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        Err(_) => ip.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_counts_as_itself_and_ipv6_as_its_64() {
        assert_eq!(bound_key("203.0.113.9"), "203.0.113.9");
        assert_eq!(bound_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
        assert_eq!(bound_key("2001:db8:1:2::1"), bound_key("2001:0db8:0001:0002:ffff:ffff:ffff:ffff"));
        assert_ne!(bound_key("2001:db8:1:2::1"), bound_key("2001:db8:1:3::1"));
        assert_eq!(bound_key("::ffff:203.0.113.9"), "203.0.113.9", "IPv4-mapped is the IPv4 address");
        assert_eq!(bound_key("::1"), "::/64");
        // Idempotent, and anything else passes through.
        assert_eq!(bound_key(&bound_key("2001:db8::5")), "2001:db8::/64");
        assert_eq!(bound_key("not an address"), "not an address");
    }
}
