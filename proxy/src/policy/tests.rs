use super::*;

fn target(host: &str, port: u16) -> Target {
    Target::new(host, port).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn patterns(list: &[&str]) -> Vec<HostPattern> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

#[test]
fn every_reserved_range_is_refused_in_v4_v6_and_mapped_forms() {
    let cases = [
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("169.254.0.1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.0.0.8", "IETF protocol assignment"),
        ("192.0.2.1", "documentation"),
        ("192.88.99.1", "6to4 relay"),
        ("192.168.1.1", "private"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("::8.8.8.8", "IPv4-compatible"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:100.64.1.1", "CGNAT"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("64:ff9b::127.0.0.1", "loopback"),
        ("64:ff9b::10.0.0.1", "private"),
        ("64:ff9b:1::1", "local NAT64"),
        ("100::1", "discard-only"),
        ("2001::1", "IETF protocol assignment"),
        ("2001:db8::1", "documentation"),
        ("2002:7f00:1::1", "6to4"),
        ("3fff::1", "documentation"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
    ];
    let policy = TargetPolicy::default();
    for (addr, range) in cases {
        assert_eq!(reserved_range(ip(addr)), Some(range), "{addr}");
        let t = target(addr, 995);
        assert_eq!(policy.check_request(&t), Ok(()), "{addr}");
        assert_eq!(
            policy.check_address(&t, ip(addr)),
            Err(Refusal::Reserved {
                ip: ip(addr),
                range
            }),
            "{addr}"
        );
        let relaxed = TargetPolicy::default().allow_reserved_ranges(true);
        assert_eq!(relaxed.check_address(&t, ip(addr)), Ok(()), "{addr}");
    }
}

#[test]
fn public_addresses_pass() {
    let policy = TargetPolicy::default();
    for addr in [
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",
        "192.169.0.1",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2001:200::1",
        "2a00:1450::1",
        "2606:4700::1111",
    ] {
        assert_eq!(reserved_range(ip(addr)), None, "{addr}");
        assert_eq!(
            policy.check_address(&target("mail.example.com", 995), ip(addr)),
            Ok(())
        );
    }
}

#[test]
fn only_configured_ports_pass() {
    let policy = TargetPolicy::default();
    for port in [995, 110] {
        assert_eq!(
            policy.check_request(&target("pop.example.com", port)),
            Ok(())
        );
    }
    for port in [25, 22, 80, 143, 443, 993, 6379, 65535] {
        assert_eq!(
            policy.check_request(&target("pop.example.com", port)),
            Err(Refusal::Port(port))
        );
    }
    let custom = TargetPolicy::default().ports([2995]);
    assert_eq!(custom.check_request(&target("a.example", 2995)), Ok(()));
    assert_eq!(
        custom.check_request(&target("a.example", 995)),
        Err(Refusal::Port(995))
    );
}

#[test]
fn wildcards_match_subdomains_only() {
    let policy = TargetPolicy::default().allow(patterns(&["*.example.com"]));
    let public = ip("192.0.1.1");
    for ok in [
        "pop.example.com",
        "a.b.example.com",
        "POP.EXAMPLE.COM",
        "pop.example.com.",
    ] {
        let t = target(ok, 995);
        assert_eq!(policy.check_request(&t), Ok(()), "{ok}");
        assert_eq!(policy.check_address(&t, public), Ok(()), "{ok}");
    }
    for refused in [
        "example.com",
        "badexample.com",
        "example.com.evil.net",
        "pop.example.co",
        "pop.example.com.evil.net",
        "xexample.com",
    ] {
        assert_eq!(
            policy.check_request(&target(refused, 995)),
            Err(Refusal::NotAllowed(target(refused, 995).host().to_owned())),
            "{refused}"
        );
    }
    // An IP literal is not a name under the domain.
    let literal = target("192.0.1.1", 995);
    assert_eq!(
        policy.check_address(&literal, public),
        Err(Refusal::NotAllowed("192.0.1.1".into()))
    );
}

#[test]
fn malformed_patterns_are_refused() {
    for bad in [
        "",
        "*",
        "*.",
        "a.*.example.com",
        "*example.com",
        "**.example.com",
        "pop example",
        "10.0.0.0/33",
        "*.10.0.0.1",
    ] {
        assert!(bad.parse::<HostPattern>().is_err(), "{bad:?}");
    }
    assert_eq!(
        "10.1.2.3/8".parse::<HostPattern>().unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        "*.Example.COM".parse::<HostPattern>().unwrap().to_string(),
        "*.example.com"
    );
}

#[test]
fn deny_wins_over_allow() {
    let policy = TargetPolicy::default()
        .allow(patterns(&["*.example.com"]))
        .deny(patterns(&["bad.example.com", "192.0.1.0/24"]));
    assert_eq!(
        policy.check_request(&target("bad.example.com", 995)),
        Err(Refusal::Denied("bad.example.com".into()))
    );
    let t = target("good.example.com", 995);
    assert_eq!(policy.check_request(&t), Ok(()));
    assert_eq!(
        policy.check_address(&t, ip("192.0.1.7")),
        Err(Refusal::Denied("192.0.1.7".into()))
    );
    // Deny rules on addresses also catch the IPv4-mapped form.
    assert_eq!(
        policy.check_address(&t, ip("::ffff:192.0.1.7")),
        Err(Refusal::Denied("::ffff:192.0.1.7".into()))
    );
}

#[test]
fn an_explicit_range_reallows_a_reserved_one_and_nothing_else() {
    let policy = TargetPolicy::default().allow(patterns(&["192.168.1.0/24"]));
    let lan = target("192.168.1.10", 995);
    assert_eq!(policy.check_address(&lan, ip("192.168.1.10")), Ok(()));
    let other = target("192.168.2.10", 995);
    assert_eq!(
        policy.check_address(&other, ip("192.168.2.10")),
        Err(Refusal::NotAllowed("192.168.2.10".into()))
    );
    // A name on the allow list that resolves to a reserved address is still refused.
    let names = TargetPolicy::default().allow(patterns(&["*.example.com"]));
    assert_eq!(
        names.check_address(&target("rebind.example.com", 995), ip("127.0.0.1")),
        Err(Refusal::Reserved {
            ip: ip("127.0.0.1"),
            range: "loopback"
        })
    );
}

#[test]
fn an_exception_allows_exactly_one_address_and_port() {
    let policy = TargetPolicy::default().also_allow("127.0.0.1:40995".parse().unwrap());
    let demo = target("127.0.0.1", 40995);
    assert_eq!(policy.check_request(&demo), Ok(()));
    assert_eq!(policy.check_address(&demo, ip("127.0.0.1")), Ok(()));
    // Another port, another loopback address, or a name for it: refused as before.
    assert_eq!(
        policy.check_request(&target("127.0.0.1", 40996)),
        Err(Refusal::Port(40996))
    );
    let other = target("127.0.0.2", 40995);
    assert!(
        policy.check_request(&other).is_err()
            || policy.check_address(&other, ip("127.0.0.2")).is_err()
    );
    let named = target("localhost", 40995);
    assert_eq!(policy.check_request(&named), Err(Refusal::Port(40995)));
}

/// Deny rules used to compare only the IPv6 address: `--deny-host 8.8.8.0/24` let
/// `64:ff9b::8.8.8.8` through, and a NAT64 gateway then connected to 8.8.8.8 anyway.
#[test]
fn deny_and_allow_rules_see_the_ipv4_address_inside_a_well_known_nat64_address() {
    let t = target("mail.example.com", 995);
    let deny = TargetPolicy::default().deny(patterns(&["8.8.8.0/24"]));
    assert_eq!(
        deny.check_address(&t, ip("64:ff9b::8.8.8.8")),
        Err(Refusal::Denied("64:ff9b::808:808".into()))
    );
    assert_eq!(deny.check_address(&t, ip("64:ff9b::9.9.9.9")), Ok(()));
    // An allowed LAN range is reached through NAT64 too, and nothing else in it.
    let lan = TargetPolicy::default().allow(patterns(&["192.168.1.0/24"]));
    let nat = target("64:ff9b::192.168.1.10", 995);
    assert_eq!(lan.check_address(&nat, ip("64:ff9b::192.168.1.10")), Ok(()));
    assert!(lan
        .check_address(&nat, ip("64:ff9b::192.168.2.10"))
        .is_err());
}

/// A site's own NAT64 prefix (here one that looks public) was not known: an address inside it
/// passed as public, and the gateway carried it to the IPv4 address it embeds, loopback or LAN
/// included.
#[test]
fn a_configured_nat64_prefix_is_judged_by_the_ipv4_address_it_embeds() {
    let t = target("mail.example.com", 995);
    let prefix: Nat64Prefix = "2a00:1:2::/96".parse().unwrap();
    let policy = TargetPolicy::default().nat64_prefixes([prefix]);
    assert_eq!(
        policy.check_address(&t, ip("2a00:1:2::127.0.0.1")),
        Err(Refusal::Reserved {
            ip: ip("2a00:1:2::127.0.0.1"),
            range: "loopback"
        })
    );
    assert_eq!(
        policy.check_address(&t, ip("2a00:1:2::10.1.2.3")),
        Err(Refusal::Reserved {
            ip: ip("2a00:1:2::10.1.2.3"),
            range: "private"
        })
    );
    assert_eq!(policy.check_address(&t, ip("2a00:1:2::8.8.8.8")), Ok(()));
    // Outside the prefix nothing changes.
    assert_eq!(policy.check_address(&t, ip("2a00:1:3::a00:1")), Ok(()));
    // A prefix inside a reserved IPv6 range (a ULA) still reaches public IPv4 addresses.
    let ula = TargetPolicy::default().nat64_prefixes(["fd00:64::/96".parse().unwrap()]);
    assert_eq!(ula.check_address(&t, ip("fd00:64::8.8.8.8")), Ok(()));
    assert!(ula.check_address(&t, ip("fd00:64::192.168.0.1")).is_err());
    assert!(ula.check_address(&t, ip("fd00:65::8.8.8.8")).is_err());
    // Deny rules see through a configured prefix as well.
    let deny = TargetPolicy::default()
        .nat64_prefixes([prefix])
        .deny(patterns(&["9.9.9.0/24"]));
    assert!(matches!(
        deny.check_address(&t, ip("2a00:1:2::9.9.9.9")),
        Err(Refusal::Denied(_))
    ));
}

#[test]
fn nat64_prefixes_must_be_96_bits_long() {
    assert!("64:ff9b::/96".parse::<Nat64Prefix>().is_ok());
    assert!("2001:db8:64::/96".parse::<Nat64Prefix>().is_ok());
    assert!("2001:db8::/32".parse::<Nat64Prefix>().is_err());
    assert!("10.0.0.0/8".parse::<Nat64Prefix>().is_err());
    assert!("2001:db8::1".parse::<Nat64Prefix>().is_err());
    assert!("nonsense".parse::<Nat64Prefix>().is_err());
}
