//! Webhook endpoint URLs, checked against SSRF before they are stored and
//! again before each delivery.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

pub const MAX_URL: usize = 2048;
pub const ALLOWED_PORTS: [u16; 3] = [443, 80, 8443];

/// IP ranges a webhook may never target, with the reason a 400 names. Order
/// matters only for the message (the metadata address before link-local).
const BLOCKED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.169.254/32", "cloud metadata"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    // IPv4 embedded in IPv6 (mapped, compatible, NAT64, 6to4, Teredo): refused
    // whatever the embedded address, so no IPv4 rule can be side-stepped.
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("::/96", "IPv4-compatible"),
    ("64:ff9b::/96", "NAT64"),
    ("64:ff9b:1::/48", "NAT64"),
    ("100::/64", "reserved"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "reserved"),
    ("2002::/16", "6to4"),
    ("fd00:ec2::254/128", "cloud metadata"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
];

/// Why an address may not be a webhook target, if it may not.
pub fn blocked_ip(ip: IpAddr) -> Option<&'static str> {
    BLOCKED.iter().find(|(net, _)| net.parse::<IpNet>().map(|n| n.contains(&ip)).unwrap_or(false)).map(|(_, why)| *why)
}

/// Names that resolve inside a network rather than on the internet.
fn local_name(host: &str) -> bool {
    host == "localhost"
        || [".localhost", ".local", ".internal", ".localdomain", ".home.arpa"].iter().any(|suffix| host.ends_with(suffix))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

/// A webhook URL that passed the checks, normalized (lowercase scheme and host,
/// no default port, `/` for an empty path, no fragment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(pub String);

/// Checks an endpoint URL. The grammar is deliberately narrower than WHATWG's
/// (printable ASCII only, no backslash, no `@` in the authority, IPv4 only as
/// a canonical dotted quad), so the host checked here is the host `fetch`
/// connects to: no parser differential can smuggle another one in.
/// `allow_loopback` (development) admits http and https to 127.0.0.1,
/// localhost and [::1] on any port; nothing else changes.
pub fn validate_url(raw: &str, allow_loopback: bool) -> Result<WebhookUrl, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("url: must not be empty".into());
    }
    if raw.len() > MAX_URL {
        return Err(format!("url: must be at most {MAX_URL} characters"));
    }
    if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(
            "url: must be printable ASCII without spaces (percent-encode, and use punycode for international names)".into()
        );
    }
    if raw.contains('\\') {
        return Err("url: must not contain backslashes".into());
    }
    let (scheme, rest) = raw.split_once("://").ok_or("url: must be an absolute https:// URL")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err("url: must use https".into());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err("url: must not contain credentials".into());
    }
    let (host_part, port_part) = if let Some(inner) = authority.strip_prefix('[') {
        let close = inner.find(']').ok_or("url: unterminated IPv6 address")?;
        let after = &inner[close + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("url: invalid characters after the IPv6 address")?),
        };
        (&authority[..close + 2], port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port_part {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err("url: invalid port".into()),
        },
        Some(_) => return Err("url: invalid port".into()),
    };
    let host = parse_host(host_part)?;
    let loopback = match &host {
        Host::Ip(IpAddr::V4(v4)) => *v4 == Ipv4Addr::LOCALHOST,
        Host::Ip(IpAddr::V6(v6)) => *v6 == Ipv6Addr::LOCALHOST,
        Host::Name(n) => n == "localhost",
    };
    if !(allow_loopback && loopback) {
        if scheme != "https" {
            return Err("url: must use https".into());
        }
        match &host {
            Host::Ip(ip) => {
                if let Some(why) = blocked_ip(*ip) {
                    return Err(format!("url: host {ip} is in a {why} range"));
                }
            }
            Host::Name(name) => {
                if local_name(name) {
                    return Err(format!("url: host {name} is a local or internal name"));
                }
                if !name.contains('.') {
                    return Err("url: host must be a fully qualified public domain name".into());
                }
            }
        }
        if let Some(p) = port {
            if !ALLOWED_PORTS.contains(&p) {
                return Err(format!("url: port {p} is not allowed (use 443, 80 or 8443)"));
            }
        }
    }
    let host_text = match &host {
        Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        Host::Ip(IpAddr::V4(v4)) => v4.to_string(),
        Host::Name(n) => n.clone(),
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let port_text = match port {
        Some(p) if p != default_port => format!(":{p}"),
        _ => String::new(),
    };
    // The fragment is never sent (fetch drops it), so it is not part of the
    // endpoint: URLs that differ only there are one receiver, and one URL per
    // account is compared on this form.
    let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
    let path = if tail.starts_with('/') { tail.to_string() } else { format!("/{tail}") };
    Ok(WebhookUrl(format!("{scheme}://{host_text}{port_text}{path}")))
}

fn parse_host(h: &str) -> Result<Host, String> {
    if let Some(inner) = h.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("url: unterminated IPv6 address")?;
        return inner.parse::<Ipv6Addr>().map(|a| Host::Ip(IpAddr::V6(a))).map_err(|_| "url: invalid IPv6 address".into());
    }
    let h = h.to_ascii_lowercase();
    let h = h.strip_suffix('.').unwrap_or(&h);
    if h.is_empty() {
        return Err("url: host is missing".into());
    }
    if !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
        return Err("url: host has characters a domain name cannot have".into());
    }
    if h.len() > 253 || h.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err("url: host is not a valid domain name".into());
    }
    // WHATWG reads a host whose last label is numeric (`2130706433`, `0x7f.1`,
    // `127.1`) as an IPv4 address; accept only the canonical dotted quad.
    let last = h.rsplit('.').next().unwrap_or("");
    if last.starts_with(|c: char| c.is_ascii_digit()) {
        return h
            .parse::<Ipv4Addr>()
            .map(|a| Host::Ip(IpAddr::V4(a)))
            .map_err(|_| "url: host looks numeric but is not a dotted-quad IPv4 address".into());
    }
    Ok(Host::Name(h.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(u: &str) -> String {
        validate_url(u, false).unwrap_or_else(|e| panic!("{u}: {e}")).0
    }

    fn why(u: &str) -> String {
        let e = validate_url(u, false).unwrap_err();
        assert!(e.starts_with("url: "), "{e}");
        e
    }

    #[test]
    fn public_https_urls_are_accepted_and_normalized() {
        assert_eq!(ok("https://hooks.example.com/jestha"), "https://hooks.example.com/jestha");
        assert_eq!(ok("HTTPS://Hooks.Example.COM./x?a=1#f"), "https://hooks.example.com/x?a=1");
        assert_eq!(ok("https://hooks.example.com#top"), "https://hooks.example.com/");
        assert_eq!(ok("https://hooks.example.com:443"), "https://hooks.example.com/");
        assert_eq!(ok("https://hooks.example.com:8443/a"), "https://hooks.example.com:8443/a");
        assert_eq!(ok("https://93.184.216.34/in"), "https://93.184.216.34/in");
        assert_eq!(ok("https://[2606:4700::1111]/in"), "https://[2606:4700::1111]/in");
        assert_eq!(ok("https://xn--bcher-kva.example/?q"), "https://xn--bcher-kva.example/?q");
    }

    #[test]
    fn non_https_and_credentials_are_refused() {
        assert_eq!(why("http://hooks.example.com/"), "url: must use https");
        assert_eq!(why("ftp://hooks.example.com/"), "url: must use https");
        assert!(why("hooks.example.com/x").contains("absolute"));
        assert_eq!(why("https://user:pw@hooks.example.com/"), "url: must not contain credentials");
        assert_eq!(why("https://user@hooks.example.com/"), "url: must not contain credentials");
        assert!(why("https://hooks.example.com\\@127.0.0.1/").contains("backslash"));
        assert!(why("https://hooks.exa mple.com/").contains("ASCII"));
        assert!(why("https://127.0.\n0.1/").contains("ASCII"), "WHATWG would drop the newline");
        assert!(why("https://127.0.\t0.1/").contains("ASCII"));
        assert!(why("https://bücher.example/").contains("ASCII"));
        assert!(why(&format!("https://a.example/{}", "x".repeat(MAX_URL))).contains("at most"));
    }

    #[test]
    fn private_loopback_link_local_cgnat_and_metadata_addresses_are_refused() {
        for (u, range) in [
            ("https://127.0.0.1/", "loopback"),
            ("https://127.9.9.9/", "loopback"),
            ("https://10.1.2.3/", "private"),
            ("https://172.16.0.1/", "private"),
            ("https://172.31.255.255/", "private"),
            ("https://192.168.1.1/", "private"),
            ("https://100.64.0.1/", "carrier-grade NAT"),
            ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
            ("https://169.254.10.10/", "link-local"),
            ("https://0.0.0.0/", "unspecified"),
            ("https://224.0.0.1/", "multicast"),
            ("https://255.255.255.255/", "reserved"),
            ("https://198.51.100.7/", "documentation"),
            ("https://[::1]/", "loopback"),
            ("https://[::]/", "unspecified"),
            ("https://[fd00::1]/", "unique-local"),
            ("https://[fd00:ec2::254]/", "cloud metadata"),
            ("https://[fe80::1]/", "link-local"),
            ("https://[ff02::1]/", "multicast"),
            ("https://[::ffff:127.0.0.1]/", "IPv4-mapped"),
            ("https://[::ffff:8.8.8.8]/", "IPv4-mapped"),
            ("https://[64:ff9b::a00:1]/", "NAT64"),
            ("https://[2002:a00:1::]/", "6to4"),
            ("https://[2001:db8::1]/", "documentation"),
        ] {
            let e = why(u);
            assert!(e.contains(range), "{u}: {e}");
        }
        assert!(ok("https://172.32.0.1/").contains("172.32.0.1"));
        assert!(ok("https://100.128.0.1/").contains("100.128.0.1"));
    }

    #[test]
    fn obfuscated_ipv4_forms_are_refused_rather_than_reinterpreted() {
        for u in [
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0x7f.0.0.1/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://127.0.0.1.1/",
            "https://010.0.0.1/",
            "https://a.b.1/",
        ] {
            assert!(why(u).contains("dotted-quad"), "{u}");
        }
        assert!(why("https://127.0.0.1%2e/").contains("characters"));
        assert!(why("https://[fe80::1%25eth0]/").contains("IPv6"));
    }

    #[test]
    fn local_internal_and_single_label_names_are_refused() {
        for u in [
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://printer.local/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://router.home.arpa/",
            "https://box.localdomain/",
        ] {
            assert!(why(u).contains("local or internal name"), "{u}: {}", why(u));
        }
        assert!(why("https://intranet/").contains("fully qualified"));
        assert!(why("https://a..b.com/").contains("valid domain"));
        assert!(why("https:///path").contains("host is missing"));
    }

    #[test]
    fn only_standard_ports_unless_loopback_is_allowed() {
        assert!(why("https://hooks.example.com:22/").contains("port 22"));
        assert!(why("https://hooks.example.com:0/").contains("invalid port"));
        assert!(why("https://hooks.example.com:99999/").contains("invalid port"));
        assert!(why("https://hooks.example.com:/").contains("invalid port"));
        assert!(why("https://hooks.example.com:44x/").contains("invalid port"));
        assert!(why("https://[2606:4700::1111]x/").contains("after the IPv6"));
    }

    #[test]
    fn the_loopback_setting_admits_only_loopback_hosts_over_http() {
        let dev = |u: &str| validate_url(u, true);
        assert_eq!(dev("http://127.0.0.1:9999/hook").unwrap().0, "http://127.0.0.1:9999/hook");
        assert_eq!(dev("http://localhost:8080").unwrap().0, "http://localhost:8080/");
        assert_eq!(dev("http://[::1]:81/").unwrap().0, "http://[::1]:81/");
        assert!(dev("http://127.0.0.2/").unwrap_err().contains("https"));
        assert!(dev("https://127.0.0.2/").unwrap_err().contains("loopback"));
        assert!(dev("http://10.0.0.1/").is_err());
        assert!(dev("http://hooks.example.com/").is_err());
        assert!(dev("https://169.254.169.254/").is_err());
        assert!(dev("http://user:pw@127.0.0.1/").unwrap_err().contains("credentials"));
        assert!(validate_url("http://127.0.0.1:9999/", false).is_err());
    }

    #[test]
    fn accepted_urls_name_the_same_host_for_the_whatwg_parser() {
        // A parser differential is how SSRF checks are bypassed: whatever we
        // accept, the standard parser must read the same host and port.
        for u in [
            "https://hooks.example.com/jestha?x=1",
            "HTTPS://Hooks.Example.COM./x",
            "https://93.184.216.34:8443/in",
            "https://[2606:4700::1111]/in",
            "https://a-b_c.example.org/%2e%2e/",
            "https://hooks.example.com/a@b",
            "https://hooks.example.com?q=@127.0.0.1",
            "https://hooks.example.com#@127.0.0.1",
        ] {
            let ours = ok(u);
            let theirs = url::Url::parse(u).unwrap();
            let again = url::Url::parse(&ours).unwrap();
            assert_eq!(again.host_str(), theirs.host_str().map(|h| h.trim_end_matches('.')), "{u}");
            assert_eq!(again.port_or_known_default(), theirs.port_or_known_default(), "{u}");
            assert_eq!(again.username(), "");
        }
    }
}
