//! Arbitrary server bytes against a client with commands of every kind in flight.
//!
//! Properties: the client never panics; feeding the same bytes in one read or split at
//! arbitrary points gives the same events and the same error, and the same bytes sent (or, when
//! a protocol violation stopped the session, one run's bytes are a prefix of the other's).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webpop_shared::pop3::{AuthMethod, Client, Command, Event, Options, SaslAuth};
use webpop_shared::secret::{Credentials, Secret, UserName};

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    sent: Vec<u8>,
    error: Option<webpop_shared::pop3::Error>,
}

fn client(selector: u8) -> Client {
    let options = Options::default()
        .max_line_length(64 + usize::from(selector))
        .max_reply_size(4096)
        .max_in_flight(1 + usize::from(selector % 8));
    let mut c = Client::new(options);
    if selector & 1 == 0 {
        c.tls_established();
    }
    c
}

fn queue(c: &mut Client, selector: u8) {
    let creds = Credentials::new("user", "pass").unwrap();
    let _ = match selector % 6 {
        0 => c.login(creds, AuthMethod::UserPass),
        1 => c.login(creds, AuthMethod::Apop),
        2 => c.send(Command::Auth(SaslAuth::Login(creds))),
        3 => c.send(Command::Auth(SaslAuth::CramMd5(creds))),
        4 => c.send(Command::Auth(SaslAuth::XOAuth2 {
            user: UserName::new("u").unwrap(),
            token: Secret::token("t").unwrap(),
        })),
        _ => c.login(creds, AuthMethod::Auto),
    };
    for command in [
        Command::Capa,
        Command::Stat,
        Command::List(None),
        Command::List(Some(1)),
        Command::Uidl(None),
        Command::Uidl(Some(2)),
        Command::Retr(1),
        Command::Top { msg: 1, lines: 0 },
        Command::Dele(1),
        Command::Noop,
        Command::Rset,
        Command::Stls,
        Command::Quit,
    ] {
        let _ = c.send(command);
    }
}

fn run(selector: u8, chunks: &[&[u8]]) -> Outcome {
    let mut c = client(selector);
    let mut out = Outcome {
        events: Vec::new(),
        sent: Vec::new(),
        error: None,
    };
    let mut queued = false;
    for chunk in chunks {
        c.handle_input(chunk);
        loop {
            if let Some(bytes) = c.poll_transmit() {
                out.sent.extend_from_slice(&bytes);
            }
            match c.poll_event() {
                Ok(Some(event)) => {
                    if !queued && matches!(event, Event::Greeting(_)) {
                        queue(&mut c, selector);
                        queued = true;
                    }
                    out.events.push(event);
                }
                Ok(None) => {
                    // Replies just handled may have queued more (e.g. PASS after USER's +OK).
                    if let Some(bytes) = c.poll_transmit() {
                        out.sent.extend_from_slice(&bytes);
                    }
                    break;
                }
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
    c.handle_eof();
    if let Err(e) = c.poll_event() {
        out.error = Some(e);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let whole = run(selector, &[data]);
    // Split after every byte whose low bits match: a deterministic, input-driven chunking.
    let mut chunks = Vec::new();
    let mut start = 0;
    for (i, b) in data.iter().enumerate() {
        if b & 3 == selector & 3 {
            chunks.push(&data[start..=i]);
            start = i + 1;
        }
    }
    chunks.push(&data[start..]);
    let split = run(selector, &chunks);
    assert_eq!(whole.events, split.events);
    assert_eq!(whole.error, split.error);
    if whole.error.is_none() {
        assert_eq!(whole.sent, split.sent);
    } else {
        // A violation stops all sending; a run that saw it later may have sent a little more.
        let (short, long) = if whole.sent.len() <= split.sent.len() {
            (&whole.sent, &split.sent)
        } else {
            (&split.sent, &whole.sent)
        };
        assert!(long.starts_with(short));
    }
});
