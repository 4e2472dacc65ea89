//! The target policy through the real relay: every reserved range (IPv4, IPv6, IPv4-mapped),
//! names that resolve to them, disallowed ports, wildcard edge cases, DNS and connect failures.
//! Each refusal reaches the client as its close code, after the upgrade.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use common::*;
use webpop_proxy::policy::{HostPattern, TargetPolicy};
use webpop_proxy::resolve::Resolver;
use webpop_proxy::RelayConfig;
use webpop_shared::relay::CloseReason;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Opens a session to `host:port` and returns the close reason the relay sent.
async fn refusal(relay: &LocalRelay, host: &str, port: u16) -> CloseReason {
    let mut ws = ws_connect(&relay.url(host, port), None, None)
        .await
        .unwrap();
    let code = close_code(&mut ws).await;
    CloseReason::from_code(code).unwrap_or_else(|| panic!("unknown close code {code}"))
}

const RESERVED: &[&str] = &[
    "0.0.0.0",
    "10.0.0.1",
    "100.64.0.1",
    "127.0.0.1",
    "127.1.2.3",
    "169.254.169.254",
    "172.16.0.1",
    "192.0.2.1",
    "192.168.0.1",
    "198.18.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::127.0.0.1",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "ff02::1",
    "2001:db8::1",
];

#[tokio::test]
async fn every_reserved_range_is_refused_as_literal_and_behind_a_name() {
    // Names resolve through fixed answers, so no DNS server is involved.
    let mut answers = HashMap::new();
    for (i, addr) in RESERVED.iter().enumerate() {
        answers.insert(format!("r{i}.example.com"), vec![ip(addr)]);
    }
    // A name with one public and one loopback answer (the DNS-rebinding shape) is refused
    // as a whole.
    answers.insert(
        "mixed.example.com".into(),
        vec![ip("192.0.1.1"), ip("127.0.0.1")],
    );
    let relay = LocalRelay::with_config(RelayConfig {
        resolver: Resolver::fixed(answers),
        new_sessions_per_client_per_minute: 0,
        ..RelayConfig::default()
    })
    .await
    .unwrap();
    for (i, addr) in RESERVED.iter().enumerate() {
        let literal = if addr.contains(':') {
            format!("[{addr}]")
        } else {
            addr.to_string()
        };
        assert_eq!(
            refusal(&relay, &literal, 995).await,
            CloseReason::ForbiddenTarget,
            "{addr}"
        );
        assert_eq!(
            refusal(&relay, &format!("r{i}.example.com"), 995).await,
            CloseReason::ForbiddenTarget,
            "name for {addr}"
        );
    }
    assert_eq!(
        refusal(&relay, "mixed.example.com", 995).await,
        CloseReason::ForbiddenTarget
    );
    let metrics = relay.relay().metrics().render();
    let expected = format!(
        "webpop_relay_refused_total{{reason=\"forbidden_target\"}} {}",
        RESERVED.len() * 2 + 1
    );
    assert!(metrics.lines().any(|l| l == expected), "{metrics}");
    assert!(metrics.contains("webpop_relay_connections_total 0"));
}

#[tokio::test]
async fn localhost_is_refused_through_the_system_resolver() {
    let echo = echo_server().await;
    let relay = LocalRelay::with_config(RelayConfig {
        policy: TargetPolicy::default().ports([echo.port()]),
        new_sessions_per_client_per_minute: 0,
        ..RelayConfig::default()
    })
    .await
    .unwrap();
    for name in ["localhost", "LOCALHOST", "localhost."] {
        assert_eq!(
            refusal(&relay, name, echo.port()).await,
            CloseReason::ForbiddenTarget,
            "{name}"
        );
    }
    assert_eq!(
        refusal(&relay, "127.0.0.1", echo.port()).await,
        CloseReason::ForbiddenTarget
    );
}

#[tokio::test]
async fn only_allowed_ports_are_reached() {
    let echo = echo_server().await;
    // Loopback is re-allowed, but only the default ports are: the echo server's port is not.
    let relay = LocalRelay::with_config(RelayConfig {
        policy: TargetPolicy::default().allow_reserved_ranges(true),
        new_sessions_per_client_per_minute: 0,
        ..RelayConfig::default()
    })
    .await
    .unwrap();
    for port in [echo.port(), 25, 22, 80, 443, 993, 6379] {
        assert_eq!(
            refusal(&relay, "127.0.0.1", port).await,
            CloseReason::ForbiddenTarget,
            "port {port}"
        );
    }
}

#[tokio::test]
async fn wildcards_allow_subdomains_and_nothing_that_merely_looks_alike() {
    let echo = echo_server().await;
    let mut answers = HashMap::new();
    for name in [
        "pop.example.com",
        "a.b.example.com",
        "example.com",
        "badexample.com",
        "pop.example.com.evil.net",
    ] {
        answers.insert(name.to_owned(), vec![echo.ip()]);
    }
    let relay = LocalRelay::with_config(RelayConfig {
        resolver: Resolver::fixed(answers),
        policy: TargetPolicy::default()
            .ports([echo.port()])
            .allow(["*.example.com".parse::<HostPattern>().unwrap()])
            .deny(["a.b.example.com".parse::<HostPattern>().unwrap()])
            .allow_reserved_ranges(true),
        new_sessions_per_client_per_minute: 0,
        ..RelayConfig::default()
    })
    .await
    .unwrap();
    let mut ws = ws_connect(&relay.url("POP.Example.com.", echo.port()), None, None)
        .await
        .unwrap();
    assert_eq!(round_trip(&mut ws, b"+OK").await, b"+OK");
    for name in [
        "a.b.example.com",
        "example.com",
        "badexample.com",
        "pop.example.com.evil.net",
        "127.0.0.1",
    ] {
        assert_eq!(
            refusal(&relay, name, echo.port()).await,
            CloseReason::ForbiddenTarget,
            "{name}"
        );
    }
}

#[tokio::test]
async fn dns_failure_connect_refused_and_connect_timeout_have_their_own_codes() {
    // A port nothing listens on: bind, note the port, close.
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // A listener whose accept queue is full drops further SYNs, so connecting hangs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full = socket.listen(0).unwrap();
    let full_addr = full.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(full_addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    // Fixed answers, so the unknown name never becomes a DNS query leaving the machine.
    let relay = LocalRelay::with_config(RelayConfig {
        connect_timeout: Duration::from_secs(1),
        resolver: Resolver::fixed(HashMap::new()),
        ..loopback_config(&[closed_port, full_addr.port(), 995])
    })
    .await
    .unwrap();
    assert_eq!(
        refusal(&relay, "no-such-name.invalid", 995).await,
        CloseReason::DnsFailure
    );
    assert_eq!(
        refusal(&relay, "127.0.0.1", closed_port).await,
        CloseReason::ConnectRefused
    );
    assert_eq!(
        refusal(&relay, "127.0.0.1", full_addr.port()).await,
        CloseReason::ConnectTimeout
    );
    drop(full);
}

#[tokio::test]
async fn malformed_queries_are_bad_requests() {
    let relay = LocalRelay::with_config(loopback_config(&[995]))
        .await
        .unwrap();
    for query in [
        "",
        "host=127.0.0.1",
        "port=995",
        "host=127.0.0.1&port=abc",
        "host=127.0.0.1&port=995&port=110",
        "host=bad%20host&port=995",
    ] {
        let url = format!("ws://{}/relay?{query}", relay.addr());
        let mut ws = ws_connect(&url, None, None).await.unwrap();
        assert_eq!(
            close_code(&mut ws).await,
            CloseReason::BadRequest.code(),
            "{query}"
        );
    }
}
