//! Replays RFC transcripts (`tests/transcripts/*.txt`) against the client: once with each
//! segment of server bytes in one read, once one byte per read. Both runs must send exactly the
//! `C:` lines and produce identical events.
//!
//! Format: `S: line` server bytes (CRLF added), `C: line` expected client bytes, `> action`
//! something the caller does (`secure`, `login USER PASS METHOD`, `auth MECH USER SECRET`, or a
//! command such as `RETR 1`), `#` comments.

use webpop_shared::pop3::{
    AuthMethod, Client, Command, Error, Event, OAuthBearer, Options, Reply, SaslAuth,
};
use webpop_shared::secret::{Credentials, Secret, UserName};

enum Item {
    Server(Vec<u8>),
    Expect(Vec<u8>),
    Action(String),
}

fn parse(text: &str) -> Vec<Item> {
    text.lines()
        .filter_map(|line| {
            let crlf = |rest: &str| {
                let mut bytes = rest.strip_prefix(' ').unwrap_or(rest).as_bytes().to_vec();
                bytes.extend_from_slice(b"\r\n");
                bytes
            };
            if let Some(rest) = line.strip_prefix("S:") {
                Some(Item::Server(crlf(rest)))
            } else if let Some(rest) = line.strip_prefix("C:") {
                Some(Item::Expect(crlf(rest)))
            } else {
                line.strip_prefix("> ").map(|a| Item::Action(a.to_owned()))
            }
        })
        .collect()
}

fn act(client: &mut Client, action: &str) {
    let words: Vec<&str> = action.split(' ').collect();
    let creds = |u: &str, p: &str| Credentials::new(u, p).unwrap();
    let result = match words.as_slice() {
        ["secure"] => {
            client.tls_established();
            return;
        }
        ["login", u, p, method] => {
            let method = match *method {
                "apop" => AuthMethod::Apop,
                "userpass" => AuthMethod::UserPass,
                "auto" => AuthMethod::Auto,
                other => panic!("unknown method {other}"),
            };
            client.login(creds(u, p), method)
        }
        ["auth", mech, u, secret] => {
            let user = UserName::new(*u).unwrap();
            let token = Secret::token(*secret).unwrap();
            let auth = match *mech {
                "plain" => SaslAuth::Plain(creds(u, secret)),
                "login" => SaslAuth::Login(creds(u, secret)),
                "cram-md5" => SaslAuth::CramMd5(creds(u, secret)),
                "xoauth2" => SaslAuth::XOAuth2 { user, token },
                "oauthbearer" => {
                    SaslAuth::OAuthBearer(OAuthBearer::new(user, token, None, None).unwrap())
                }
                other => panic!("unknown mechanism {other}"),
            };
            client.send(Command::Auth(auth))
        }
        [verb, args @ ..] => {
            let n = |i: usize| args[i].parse::<u32>().unwrap();
            let command = match (*verb, args.len()) {
                ("CAPA", 0) => Command::Capa,
                ("STLS", 0) => Command::Stls,
                ("STAT", 0) => Command::Stat,
                ("LIST", 0) => Command::List(None),
                ("LIST", 1) => Command::List(Some(n(0))),
                ("UIDL", 0) => Command::Uidl(None),
                ("UIDL", 1) => Command::Uidl(Some(n(0))),
                ("TOP", 2) => Command::Top {
                    msg: n(0),
                    lines: n(1),
                },
                ("RETR", 1) => Command::Retr(n(0)),
                ("DELE", 1) => Command::Dele(n(0)),
                ("RSET", 0) => Command::Rset,
                ("NOOP", 0) => Command::Noop,
                ("QUIT", 0) => Command::Quit,
                _ => panic!("unknown action {action}"),
            };
            client.send(command)
        }
        [] => panic!("empty action"),
    };
    result.unwrap_or_else(|e| panic!("{action}: {e}"));
}

#[derive(Debug, PartialEq)]
struct Run {
    sent: Vec<u8>,
    events: Vec<Event>,
    error: Option<Error>,
}

fn replay(items: &[Item], byte_by_byte: bool) -> Run {
    let mut client = Client::new(Options::default());
    let mut run = Run {
        sent: Vec::new(),
        events: Vec::new(),
        error: None,
    };
    let pump = |client: &mut Client, run: &mut Run| loop {
        if let Some(bytes) = client.poll_transmit() {
            run.sent.extend_from_slice(&bytes);
        }
        match client.poll_event() {
            Ok(Some(event)) => run.events.push(event),
            Ok(None) => {
                if let Some(bytes) = client.poll_transmit() {
                    run.sent.extend_from_slice(&bytes);
                }
                break;
            }
            Err(e) => {
                run.error = Some(e);
                break;
            }
        }
    };
    let mut pending = Vec::new();
    let feed = |client: &mut Client, run: &mut Run, pending: &mut Vec<u8>| {
        if byte_by_byte {
            for b in pending.iter() {
                client.handle_input(std::slice::from_ref(b));
                pump(client, run);
            }
        } else {
            client.handle_input(pending);
        }
        pending.clear();
        pump(client, run);
    };
    for item in items {
        match item {
            Item::Server(bytes) => pending.extend_from_slice(bytes),
            Item::Expect(_) => {}
            Item::Action(action) => {
                feed(&mut client, &mut run, &mut pending);
                act(&mut client, action);
                pump(&mut client, &mut run);
            }
        }
    }
    feed(&mut client, &mut run, &mut pending);
    run
}

/// Replays a transcript both ways and checks what both must agree on.
fn check(name: &str) -> Vec<Event> {
    let path = format!(
        "{}/tests/transcripts/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let items = parse(&text);
    let expected: Vec<u8> = items
        .iter()
        .filter_map(|i| match i {
            Item::Expect(b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let whole = replay(&items, false);
    let bytes = replay(&items, true);
    assert_eq!(whole.error, None, "{name}");
    assert_eq!(
        String::from_utf8_lossy(&whole.sent),
        String::from_utf8_lossy(&expected),
        "{name}: client bytes"
    );
    assert_eq!(
        whole, bytes,
        "{name}: whole and byte-by-byte replays differ"
    );
    whole.events
}

fn replies(events: &[Event]) -> Vec<&Reply> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Reply { reply, .. } => Some(reply),
            _ => None,
        })
        .collect()
}

fn rejections(events: &[Event]) -> Vec<&webpop_shared::pop3::ServerError> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected { error, .. } => Some(error),
            _ => None,
        })
        .collect()
}

#[test]
fn rfc1939_example_session() {
    let events = check("rfc1939-example-session");
    let r = replies(&events);
    assert_eq!(r.len(), 8);
    assert_eq!(r[0], &Reply::Authenticated);
    assert_eq!(
        r[3],
        &Reply::Message(
            b"From: a@example.org\r\nSubject: one\r\n\r\n.this line was dot-stuffed\r\n".to_vec()
        )
    );
    assert_eq!(r[5], &Reply::Message(Vec::new()));
}

#[test]
fn rfc1939_commands() {
    let events = check("rfc1939-commands");
    assert_eq!(rejections(&events).len(), 2);
    assert!(replies(&events)
        .iter()
        .any(|r| matches!(r, Reply::Uids(u) if u.len() == 2)));
}

#[test]
fn rfc2449_capa_pipelining() {
    let events = check("rfc2449-capa-pipelining");
    let Reply::Capabilities(caps) = replies(&events)[0] else {
        panic!("first reply is CAPA")
    };
    assert!(caps.pipelining);
    assert_eq!(caps.login_delay.map(|d| d.seconds), Some(900));
    assert_eq!(replies(&events).len(), 7);
}

#[test]
fn rfc2449_resp_codes() {
    use webpop_shared::pop3::RespCode::*;
    let events = check("rfc2449-resp-codes");
    let codes: Vec<_> = rejections(&events).iter().map(|e| e.code.clone()).collect();
    assert_eq!(
        codes,
        vec![
            Some(InUse),
            Some(LoginDelay),
            Some(SysTemp),
            Some(Auth),
            Some(SysPerm)
        ]
    );
}

#[test]
fn rfc5034_auth() {
    let events = check("rfc5034-auth");
    assert_eq!(rejections(&events).len(), 2);
    assert_eq!(replies(&events)[0], &Reply::Authenticated);
}

#[test]
fn rfc7628_oauth_errors() {
    let events = check("rfc7628-oauth-errors");
    let errors = rejections(&events);
    assert!(errors[0].sasl_error.as_deref().unwrap().contains("\"401\""));
    assert!(errors[1]
        .sasl_error
        .as_deref()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(replies(&events), vec![&Reply::Authenticated]);
}

#[test]
fn rfc2595_stls() {
    let events = check("rfc2595-stls");
    assert_eq!(replies(&events).len(), 3);
}
