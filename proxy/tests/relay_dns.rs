//! DNS through the relay: a name server that never answers holds up neither other clients'
//! lookups nor the web app, and names are asked exactly as the page gave them (no search
//! domain). The name server here is the test's own, on 127.0.0.1: it records every name it is
//! asked, answers for `good.test`, says NXDOMAIN for other names, and never answers for names
//! under `slow.test` (it reads the query and drops it).

mod common;

use std::collections::{BTreeSet, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser as _;
use common::*;
use hickory_resolver::config::{NameServerConfig, NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use webpop_proxy::config::Args;
use webpop_proxy::resolve::Resolver;
use webpop_proxy::RelayConfig;
use webpop_shared::relay::CloseReason;

/// The test's name server: where it listens and every name it was asked, in order (lower
/// case, fully qualified: `good.test.`).
struct NameServer {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
}

impl NameServer {
    async fn start() -> Self {
        // Over TCP (tried after a truncated answer) it accepts and never answers either. The
        // TCP port must equal the UDP one, which another test may hold: try fresh ports until
        // both are free (CI stop 19 failed on AddrInUse here).
        let (udp, tcp, addr) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, tcp, addr),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => panic!("test name server over TCP: {e}"),
            }
        };
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = tcp.accept().await {
                held.push(conn);
            }
        });
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&asked);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = udp.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(question) = query.queries().first().cloned() else {
                    continue;
                };
                let name = question.name().to_ascii().to_ascii_lowercase();
                seen.lock().unwrap().push(name.clone());
                if name.ends_with(".slow.test.") {
                    continue;
                }
                let mut answer = Message::new();
                answer
                    .set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(query.op_code())
                    .set_recursion_desired(query.recursion_desired())
                    .set_recursion_available(true)
                    .add_queries(query.queries().to_vec());
                if name == "good.test." {
                    if question.query_type() == RecordType::A {
                        answer.add_answer(Record::from_rdata(
                            question.name().clone(),
                            60,
                            RData::A(A(Ipv4Addr::LOCALHOST)),
                        ));
                    }
                } else {
                    answer.set_response_code(ResponseCode::NXDomain);
                }
                let _ = udp.send_to(&answer.to_vec().unwrap(), from).await;
            }
        });
        Self { addr, asked }
    }

    /// Forgets the names asked so far.
    fn clear(&self) {
        self.asked.lock().unwrap().clear();
    }

    /// Distinct names asked.
    fn names(&self) -> BTreeSet<String> {
        self.asked.lock().unwrap().iter().cloned().collect()
    }

    /// Distinct `slow.test` names asked (and never answered).
    fn dropped(&self) -> usize {
        let asked = self.asked.lock().unwrap();
        let slow = asked.iter().filter(|name| name.ends_with(".slow.test."));
        slow.collect::<HashSet<_>>().len()
    }

    /// Queries received, all names.
    fn queries(&self) -> usize {
        self.asked.lock().unwrap().len()
    }
}

/// A plain GET from 127.0.0.1; the status line.
async fn get(relay: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(relay).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or("").to_owned()
}

/// `lookup_host` ran getaddrinfo on tokio's shared blocking pool, and the connect timeout ended
/// the session but not the lookup: random names under a domain whose name server never answers
/// filled the pool, and other clients' lookups and the web app's file serving (which reads
/// files on the same pool) stopped. Here the runtime has a blocking pool of 2 threads, and 8
/// clients keep 6 lookups each hanging.
#[test]
fn a_name_server_that_never_answers_stalls_neither_other_clients_nor_the_web_app() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let dns = NameServer::start().await;
        let echo = echo_server().await;
        // Lookups may hang for a minute: far longer than the test takes.
        let resolver = Resolver::with_limits([dns.addr], Duration::from_secs(60), 256, 4);
        let relay = LocalRelay::with_config(RelayConfig {
            resolver: resolver.clone(),
            connect_timeout: Duration::from_secs(90),
            ..loopback_config(&[echo.port()])
        })
        .await
        .unwrap();

        let mut hanging = Vec::new();
        let mut refused = 0;
        for client in 2..10u8 {
            let source = std::net::IpAddr::from([127, 0, 0, client]);
            for i in 0..6 {
                let url = relay.url(&format!("n{client}-{i}.slow.test"), echo.port());
                let mut ws = ws_connect(&url, None, Some(source)).await.unwrap();
                if i >= 4 {
                    // Past the per-client cap on lookups in flight: refused at once.
                    assert_eq!(close_code(&mut ws).await, CloseReason::LimitReached.code());
                    refused += 1;
                } else {
                    hanging.push(ws);
                }
            }
        }
        assert_eq!(refused, 16);
        // Every hanging lookup reached the name server, which keeps them unanswered.
        for _ in 0..1000 {
            if dns.dropped() >= 32 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(dns.dropped(), 32);
        assert_eq!(resolver.in_flight(), 32);

        // Another client's good name resolves and relays; the web app answers.
        let within = Duration::from_secs(20);
        let url = relay.url("good.test", echo.port());
        let mut ws = tokio::time::timeout(within, ws_connect(&url, None, None))
            .await
            .expect("the upgrade hung")
            .unwrap();
        let back = tokio::time::timeout(within, round_trip(&mut ws, b"still here"))
            .await
            .expect("the good name hung");
        assert_eq!(back, b"still here");
        for path in ["/healthz", "/", "/index.html"] {
            let line = tokio::time::timeout(within, get(relay.addr(), path))
                .await
                .unwrap_or_else(|_| panic!("{path} hung"));
            assert!(line.starts_with("HTTP/1.1 200 "), "{path}: {line}");
        }
        // The bad names are still hanging, and no more were asked.
        assert_eq!(resolver.in_flight(), 32);
        drop(hanging);
    });
}

/// A name that failed fails again at once, without a new query, for a while: a client
/// repeating a bad name costs nothing.
#[tokio::test]
async fn a_failed_name_is_remembered_and_not_asked_again_for_a_while() {
    let dns = NameServer::start().await;
    let resolver = Resolver::with_limits([dns.addr], Duration::from_millis(300), 256, 4);
    let client = "192.0.2.1".parse().unwrap();
    let first = resolver.resolve("once.slow.test", 995, client).await;
    assert!(first.is_err());
    assert_eq!(dns.dropped(), 1);
    // Let any query still on its way arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = dns.queries();
    let again = tokio::time::timeout(
        Duration::from_secs(5),
        resolver.resolve("once.slow.test", 995, client),
    )
    .await
    .expect("a remembered failure answers at once");
    assert!(again.is_err());
    assert_eq!(dns.queries(), asked, "no new query");
    assert_eq!(
        resolver.resolve("good.test", 995, client).await.unwrap(),
        vec!["127.0.0.1:995".parse::<SocketAddr>().unwrap()]
    );
    assert!(resolver
        .resolve("nxdomain.test", 995, client)
        .await
        .is_err());
}

/// A relay host's `/etc/resolv.conf` usually names search domains (`search corp.example`):
/// getaddrinfo, or a resolver that honours them, turns a page's `mail` into
/// `mail.corp.example`, a server inside the relay's network the page never named. The relay,
/// configured from its command line (`--name-server`), asks for exactly the names given, fully
/// qualified, and for nothing else. (How `/etc/resolv.conf` itself is read, without its
/// search list: `resolve::tests::a_resolv_conf_gives_its_name_servers_and_never_its_search_domains`.)
#[tokio::test]
async fn relay_lookups_never_append_search_domains() {
    let dns = NameServer::start().await;
    let echo = echo_server().await;

    // Positive control: a resolver that honours a resolv.conf's search list, pointed at the
    // same name server, asks it for `mail.corp.example.`, which the server records.
    let (conf, options) = hickory_resolver::system_conf::parse_resolv_conf(
        "search corp.example\nnameserver 127.0.0.1\noptions ndots:5\n",
    )
    .unwrap();
    let servers = NameServerConfigGroup::from(vec![NameServerConfig::new(dns.addr, Protocol::Udp)]);
    let config =
        ResolverConfig::from_parts(conf.domain().cloned(), conf.search().to_vec(), servers);
    let mut honouring =
        TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
    *honouring.options_mut() = options;
    let _ = honouring.build().lookup_ip("mail").await;
    assert!(
        dns.names().contains("mail.corp.example."),
        "{:?}",
        dns.names()
    );
    dns.clear();

    let settings = Args::try_parse_from([
        "webpop-proxy".to_owned(),
        "--name-server".to_owned(),
        dns.addr.to_string(),
        "--allow-port".to_owned(),
        echo.port().to_string(),
        "--allow-private-targets".to_owned(),
    ])
    .unwrap()
    .into_settings()
    .unwrap();
    let relay = LocalRelay::with_config(RelayConfig {
        new_sessions_per_client_per_minute: 0,
        ..settings.relay
    })
    .await
    .unwrap();

    for host in ["mail", "mail.corp", "MAIL.Corp"] {
        let mut ws = ws_connect(&relay.url(host, echo.port()), None, None)
            .await
            .unwrap();
        // NXDOMAIN for the name as given: the session ends there.
        assert_eq!(
            close_code(&mut ws).await,
            CloseReason::DnsFailure.code(),
            "{host}"
        );
    }
    // The good name still resolves through the same resolver and relays.
    let mut ws = ws_connect(&relay.url("good.test", echo.port()), None, None)
        .await
        .unwrap();
    assert_eq!(round_trip(&mut ws, b"resolved").await, b"resolved");

    assert_eq!(
        dns.names(),
        BTreeSet::from(["mail.", "mail.corp.", "good.test."].map(String::from)),
        "asked exactly the names given, nothing with a search suffix"
    );
}
