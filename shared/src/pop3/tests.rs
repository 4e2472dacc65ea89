//! Behaviour of the client as a whole, fed by hand-written server bytes.

use super::*;
use crate::secret::Credentials;

/// A client past the greeting, on a connection marked secure.
fn ready(options: Options) -> Client {
    let mut c = Client::new(options);
    c.tls_established();
    c.handle_input(b"+OK ready <1.2@x>\r\n");
    assert!(matches!(c.poll_event(), Ok(Some(Event::Greeting(_)))));
    c
}

fn with_pipelining(max_in_flight: usize) -> Client {
    let mut c = ready(Options::default().max_in_flight(max_in_flight));
    c.send(Command::Capa).unwrap();
    assert_eq!(c.poll_transmit().unwrap(), b"CAPA\r\n");
    c.handle_input(b"+OK\r\nPIPELINING\r\nUIDL\r\n.\r\n");
    assert!(matches!(
        c.poll_event(),
        Ok(Some(Event::Reply {
            reply: Reply::Capabilities(_),
            ..
        }))
    ));
    c
}

fn events(c: &mut Client) -> Vec<Event> {
    let mut all = Vec::new();
    while let Some(e) = c.poll_event().unwrap() {
        all.push(e);
    }
    all
}

fn message(c: &mut Client) -> Vec<u8> {
    match c.poll_event() {
        Ok(Some(Event::Reply {
            reply: Reply::Message(m),
            ..
        })) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn retr(c: &mut Client, server: &[&[u8]]) -> Vec<u8> {
    c.send(Command::Retr(1)).unwrap();
    assert_eq!(c.poll_transmit().unwrap(), b"RETR 1\r\n");
    for chunk in &server[..server.len() - 1] {
        c.handle_input(chunk);
        assert_eq!(c.poll_event(), Ok(None));
    }
    c.handle_input(server[server.len() - 1]);
    message(c)
}

#[test]
fn dot_unstuffing_keeps_every_other_byte() {
    let mut c = ready(Options::default());
    let m = retr(
        &mut c,
        &[b"+OK\r\n..\r\n...\r\n..x\r\nFrom me\r\n. \r\n.\r\n"],
    );
    assert_eq!(m, b".\r\n..\r\n.x\r\nFrom me\r\n \r\n");
}

#[test]
fn empty_body() {
    let mut c = ready(Options::default());
    assert_eq!(retr(&mut c, &[b"+OK 0 octets\r\n.\r\n"]), b"");
}

#[test]
fn terminator_split_across_reads() {
    for split in [
        b"+OK\r\nab\r\n." as &[u8],
        b"+OK\r\nab\r\n.\r",
        b"+OK\r\nab\r",
        b"+OK\r\nab",
    ] {
        let mut c = ready(Options::default());
        let whole = b"+OK\r\nab\r\n.\r\n";
        let m = retr(&mut c, &[split, &whole[split.len()..]]);
        assert_eq!(m, b"ab\r\n");
    }
}

#[test]
fn lines_longer_than_998_octets_and_non_utf8_bytes() {
    let mut c = ready(Options::default());
    let long = vec![b'x'; 20_000];
    let mut server = b"+OK\r\n".to_vec();
    server.extend_from_slice(&long);
    server.extend_from_slice(b"\r\n\xff\xfe\x82\xa0\x00\r\n.\r\n");
    let m = retr(&mut c, &[&server]);
    assert_eq!(m.len(), 20_000 + 2 + 7);
    assert!(m.ends_with(b"\xff\xfe\x82\xa0\x00\r\n"));
}

#[test]
fn reply_size_limit_is_a_clear_error() {
    let mut c = ready(Options::default().max_reply_size(10));
    c.send(Command::Retr(1)).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK\r\n0123456789abc");
    let e = c.poll_event().unwrap_err();
    assert_eq!(
        e,
        Error::ReplyTooLarge {
            verb: "RETR",
            limit: 10
        }
    );
    assert!(e.to_string().contains("larger than the limit of 10 bytes"));
}

#[test]
fn line_length_limit_and_errors_are_sticky() {
    let mut c = ready(Options::default().max_line_length(20));
    c.send(Command::Noop).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK this status line is far too long");
    let e = c.poll_event().unwrap_err();
    assert_eq!(e, Error::LineTooLong { limit: 20 });
    c.handle_input(b"\r\n+OK\r\n");
    assert_eq!(c.poll_event().unwrap_err(), e);
    assert_eq!(c.send(Command::Noop), Err(Error::Ended));
}

#[test]
fn err_is_an_event_with_resp_code() {
    let mut c = ready(Options::default());
    let h = c
        .login(Credentials::new("u", "p").unwrap(), AuthMethod::UserPass)
        .unwrap();
    assert_eq!(c.poll_transmit().unwrap(), b"USER u\r\n");
    c.handle_input(b"+OK\r\n");
    assert_eq!(c.poll_event(), Ok(None));
    assert_eq!(c.poll_transmit().unwrap(), b"PASS p\r\n");
    c.handle_input(b"-ERR [IN-USE] locked\r\n");
    match c.poll_event() {
        Ok(Some(Event::Rejected { handle, error })) => {
            assert_eq!(handle, h);
            assert_eq!(error.code, Some(RespCode::InUse));
            assert_eq!(error.text, "locked");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.state(), State::Authorization);
}

#[test]
fn garbage_is_a_typed_sticky_error() {
    let mut c = ready(Options::default());
    c.send(Command::Stat).unwrap();
    c.poll_transmit();
    c.handle_input(b"HTTP/1.1 200 OK\r\n");
    let e = c.poll_event().unwrap_err();
    assert!(matches!(e, Error::NotAReply { .. }), "{e:?}");
    assert_eq!(c.poll_event().unwrap_err(), e);
}

#[test]
fn malformed_stat_and_uidl() {
    let mut c = ready(Options::default());
    c.send(Command::Stat).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK lots\r\n");
    assert!(matches!(
        c.poll_event(),
        Err(Error::Malformed { verb: "STAT", .. })
    ));
    let mut c = ready(Options::default());
    c.send(Command::Uidl(None)).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK\r\n1 \x01bad\r\n.\r\n");
    assert!(matches!(
        c.poll_event(),
        Err(Error::Malformed { verb: "UIDL", .. })
    ));
}

#[test]
fn unsolicited_reply_is_an_error() {
    let mut c = ready(Options::default());
    c.handle_input(b"-ERR disconnected for inactivity\r\n");
    assert!(matches!(c.poll_event(), Err(Error::Unsolicited { .. })));
}

#[test]
fn lock_step_without_pipelining() {
    let mut c = ready(Options::default());
    for n in 1..=3 {
        c.send(Command::Retr(n)).unwrap();
    }
    assert_eq!(c.poll_transmit().unwrap(), b"RETR 1\r\n");
    assert_eq!(c.poll_transmit(), None);
    c.handle_input(b"+OK\r\na\r\n.\r\n");
    assert_eq!(message(&mut c), b"a\r\n");
    assert_eq!(c.poll_transmit().unwrap(), b"RETR 2\r\n");
}

#[test]
fn pipelining_is_bounded_by_max_in_flight() {
    let mut c = with_pipelining(3);
    for n in 1..=5 {
        c.send(Command::Retr(n)).unwrap();
    }
    assert_eq!(
        c.poll_transmit().unwrap(),
        b"RETR 1\r\nRETR 2\r\nRETR 3\r\n"
    );
    assert_eq!(c.poll_transmit(), None);
    c.handle_input(b"+OK\r\n1\r\n.\r\n+OK\r\n2\r\n");
    assert_eq!(message(&mut c), b"1\r\n");
    assert_eq!(c.poll_transmit().unwrap(), b"RETR 4\r\n");
    c.handle_input(b".\r\n");
    assert_eq!(message(&mut c), b"2\r\n");
    assert_eq!(c.poll_transmit().unwrap(), b"RETR 5\r\n");
    assert_eq!(c.pending(), 3);
}

#[test]
fn barriers_are_not_pipelined_past() {
    let mut c = with_pipelining(10);
    c.send(Command::Stat).unwrap();
    c.send(Command::Quit).unwrap();
    assert_eq!(c.poll_transmit().unwrap(), b"STAT\r\n");
    c.handle_input(b"+OK 0 0\r\n");
    assert!(c.poll_event().unwrap().is_some());
    assert_eq!(c.poll_transmit().unwrap(), b"QUIT\r\n");
    assert_eq!(c.send(Command::Noop), Err(Error::Ended));
}

#[test]
fn credentials_are_refused_without_tls() {
    let mut c = Client::new(Options::default());
    c.handle_input(b"+OK <a@b>\r\n");
    c.poll_event().unwrap();
    let creds = Credentials::new("u", "p").unwrap();
    assert_eq!(
        c.login(creds.clone(), AuthMethod::UserPass),
        Err(Error::CredentialsWithoutTls)
    );
    assert_eq!(
        c.send(Command::Apop(creds)),
        Err(Error::CredentialsWithoutTls)
    );
    assert_eq!(c.poll_transmit(), None);
}

#[test]
fn stls_then_injected_data_is_refused() {
    let mut c = Client::new(Options::default());
    c.handle_input(b"+OK\r\n");
    c.poll_event().unwrap();
    c.send(Command::Stls).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK begin TLS\r\n-ERR injected\r\n");
    assert!(matches!(c.poll_event(), Ok(Some(Event::Reply { .. }))));
    assert_eq!(c.poll_event(), Err(Error::DataAfterStls));
}

#[test]
fn stls_clean_upgrade_forgets_capabilities() {
    let mut c = Client::new(Options::default());
    c.handle_input(b"+OK\r\n");
    c.poll_event().unwrap();
    c.send(Command::Capa).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK\r\nSTLS\r\nPIPELINING\r\n.\r\n");
    c.poll_event().unwrap();
    c.send(Command::Stls).unwrap();
    assert_eq!(c.poll_transmit().unwrap(), b"STLS\r\n");
    c.handle_input(b"+OK begin TLS\r\n");
    assert!(c.poll_event().unwrap().is_some());
    assert_eq!(c.state(), State::AwaitingTls);
    c.send(Command::Noop).unwrap();
    assert_eq!(
        c.poll_transmit(),
        None,
        "nothing goes out in plaintext after STLS"
    );
    c.tls_established();
    assert!(c.capabilities().is_none());
    assert_eq!(c.poll_transmit().unwrap(), b"NOOP\r\n");
}

#[test]
fn eof_with_commands_pending_is_an_error_after_buffered_events() {
    let mut c = ready(Options::default());
    c.send(Command::Noop).unwrap();
    c.send(Command::Noop).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK\r\n");
    c.handle_eof();
    assert!(c.poll_event().unwrap().is_some());
    assert_eq!(c.poll_event(), Err(Error::ConnectionClosed { pending: 1 }));
}

#[test]
fn eof_after_quit_is_fine() {
    let mut c = ready(Options::default());
    c.send(Command::Quit).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK bye\r\n");
    c.handle_eof();
    assert_eq!(events(&mut c).len(), 1);
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn rejected_greeting() {
    let mut c = Client::new(Options::default());
    c.handle_input(b"-ERR [SYS/TEMP] too many connections\r\n");
    match c.poll_event() {
        Ok(Some(Event::GreetingRejected(e))) => assert_eq!(e.code, Some(RespCode::SysTemp)),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn apop_needs_a_timestamp() {
    let mut c = Client::new(Options::default());
    c.tls_established();
    c.handle_input(b"+OK no stamp\r\n");
    c.poll_event().unwrap();
    assert_eq!(
        c.login(Credentials::new("u", "p").unwrap(), AuthMethod::Apop),
        Err(Error::ApopUnavailable)
    );
}

#[test]
fn auto_login_prefers_sasl_plain() {
    let mut c = ready(Options::default());
    c.send(Command::Capa).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n");
    c.poll_event().unwrap();
    c.login(Credentials::new("u", "p").unwrap(), AuthMethod::Auto)
        .unwrap();
    assert_eq!(c.poll_transmit().unwrap(), b"AUTH PLAIN AHUAcA==\r\n");
    c.handle_input(b"+OK logged in\r\n");
    assert!(matches!(
        c.poll_event(),
        Ok(Some(Event::Reply {
            reply: Reply::Authenticated,
            ..
        }))
    ));
    assert_eq!(c.state(), State::Transaction);
}

#[test]
fn continuation_to_a_non_auth_command_is_an_error() {
    let mut c = ready(Options::default());
    c.send(Command::Noop).unwrap();
    c.poll_transmit();
    c.handle_input(b"+ Zm9v\r\n");
    assert_eq!(
        c.poll_event(),
        Err(Error::UnexpectedContinuation { verb: "NOOP" })
    );
}

#[test]
fn xoauth2_error_json_reaches_the_rejection() {
    let mut c = ready(Options::default());
    let user = crate::secret::UserName::new("u@example.com").unwrap();
    let token = crate::secret::Secret::token("t").unwrap();
    let h = c
        .send(Command::Auth(SaslAuth::XOAuth2 { user, token }))
        .unwrap();
    c.poll_transmit();
    // {"status":"401"}
    c.handle_input(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n");
    assert_eq!(c.poll_event(), Ok(None));
    assert_eq!(c.poll_transmit().unwrap(), b"\r\n");
    c.handle_input(b"-ERR [AUTH] invalid credentials\r\n");
    match c.poll_event() {
        Ok(Some(Event::Rejected { handle, error })) => {
            assert_eq!(handle, h);
            assert_eq!(error.sasl_error.as_deref(), Some(r#"{"status":"401"}"#));
            assert_eq!(error.code, Some(RespCode::Auth));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_never_shows_mail_or_credentials() {
    let mut c = ready(Options::default());
    c.login(Credentials::new("u", "hunter2").unwrap(), AuthMethod::Plain)
        .unwrap();
    c.send(Command::Retr(1)).unwrap();
    c.handle_input(b"+OK\r\nsecret mail body");
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("AHUAaHVudGVyMg"),
        "{shown}"
    );
    assert!(
        !shown.contains("115, 101, 99") && !shown.contains("secret mail"),
        "{shown}"
    );
}

/// Found by the fuzzer (fuzz/artifacts crash-0984…): garbage after USER's +OK. The PASS that
/// the +OK queued must not go out once the session has failed.
#[test]
fn nothing_is_sent_after_a_protocol_violation() {
    let mut c = ready(Options::default());
    c.login(Credentials::new("u", "p").unwrap(), AuthMethod::UserPass)
        .unwrap();
    assert_eq!(c.poll_transmit().unwrap(), b"USER u\r\n");
    c.handle_input(b"+OK\r\n+\xf2garbage\r\n");
    assert!(matches!(c.poll_event(), Err(Error::NotAReply { .. })));
    assert_eq!(c.poll_transmit(), None);
}

/// Security review: a server that passes bare LFs through let a message body end its own reply
/// with `\n.\n`, and what followed (`+OK` and a forged message) became the reply to the next
/// pipelined RETR.
#[test]
fn a_bare_lf_dot_line_does_not_end_a_retr() {
    let hostile: &[u8] =
        b"Subject: hi\r\n\r\ntext\n.\n+OK\nFrom: bank\n\nforged\n.\nmore\r\n..\n.\r\n";
    let mut server = b"+OK\r\n".to_vec();
    server.extend_from_slice(hostile);
    server.extend_from_slice(b".\r\n+OK\r\nSubject: real\r\n\r\nreal\r\n.\r\n");
    for byte_by_byte in [false, true] {
        let mut c = with_pipelining(8);
        c.send(Command::Retr(1)).unwrap();
        c.send(Command::Retr(2)).unwrap();
        c.poll_transmit();
        let mut got = Vec::new();
        if byte_by_byte {
            for b in &server {
                c.handle_input(std::slice::from_ref(b));
                got.extend(events(&mut c));
            }
        } else {
            c.handle_input(&server);
            got = events(&mut c);
        }
        let bodies: Vec<Vec<u8>> = got
            .into_iter()
            .map(|e| match e {
                Event::Reply {
                    reply: Reply::Message(m),
                    ..
                } => m,
                other => panic!("expected a message, got {other:?}"),
            })
            .collect();
        // The CRLF-started line "..\n.\r\n" is dot-stuffed content, not a terminator.
        let mut first =
            b"Subject: hi\r\n\r\ntext\n.\n+OK\nFrom: bank\n\nforged\n.\nmore\r\n".to_vec();
        first.extend_from_slice(b".\n.\r\n");
        assert_eq!(
            bodies,
            [first, b"Subject: real\r\n\r\nreal\r\n".to_vec()],
            "byte by byte: {byte_by_byte}"
        );
    }
}

#[test]
fn a_multi_line_reply_ends_only_at_crlf_dot_crlf() {
    let mut c = ready(Options::default());
    // A bare LF before the dot, or after it, is content.
    let m = retr(&mut c, &[b"+OK\r\na\n.\r\nb\r\n.\nc\r\n.\r\n"]);
    assert_eq!(m, b"a\n.\r\nb\r\n\nc\r\n");
    // Status lines stay tolerant of a bare LF.
    let m = retr(&mut c, &[b"+OK\nx\r\n.\r\n"]);
    assert_eq!(m, b"x\r\n");
}

/// Security review: a listing of tiny lines costs far more memory as entries than as bytes, so
/// a hostile server could make a LIST or UIDL reply within the byte limit take hundreds of MB.
#[test]
fn a_listing_longer_than_the_stat_count_or_the_entry_limit_is_refused() {
    let mut c = ready(Options::default().max_listing_entries(1000));
    c.send(Command::Stat).unwrap();
    c.send(Command::Uidl(None)).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK 2 300\r\n");
    assert!(matches!(
        c.poll_event(),
        Ok(Some(Event::Reply {
            reply: Reply::Stat(_),
            ..
        }))
    ));
    c.poll_transmit();
    c.handle_input(b"+OK\r\n1 a\r\n2 b\r\n3 c\r\n.\r\n");
    assert_eq!(
        c.poll_event(),
        Err(Error::ListingTooLong {
            verb: "UIDL",
            limit: 2
        })
    );

    // Without STAT, the Options limit.
    let mut c = ready(Options::default().max_listing_entries(3));
    c.send(Command::List(None)).unwrap();
    c.poll_transmit();
    let mut server = b"+OK\r\n".to_vec();
    for i in 1..=100 {
        server.extend_from_slice(format!("{i} 1\r\n").as_bytes());
    }
    c.handle_input(&server);
    let e = c.poll_event().unwrap_err();
    assert_eq!(
        e,
        Error::ListingTooLong {
            verb: "LIST",
            limit: 3
        }
    );
    assert!(e.to_string().contains("more than 3 lines"));

    // Exactly the STAT count is fine.
    let mut c = ready(Options::default());
    c.send(Command::Stat).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK 2 300\r\n");
    assert!(c.poll_event().unwrap().is_some());
    c.send(Command::List(None)).unwrap();
    c.poll_transmit();
    c.handle_input(b"+OK\r\n1 100\r\n2 200\r\n.\r\n");
    assert!(matches!(
        c.poll_event(),
        Ok(Some(Event::Reply {
            reply: Reply::Listing(l),
            ..
        })) if l.len() == 2
    ));
}

#[test]
fn a_capa_reply_of_endless_lines_is_refused() {
    let mut c = ready(Options::default());
    c.send(Command::Capa).unwrap();
    c.poll_transmit();
    let mut server = b"+OK\r\n".to_vec();
    for i in 0..1000 {
        server.extend_from_slice(format!("X-CAP-{i}\r\n").as_bytes());
    }
    c.handle_input(&server);
    assert!(matches!(
        c.poll_event(),
        Err(Error::ListingTooLong { verb: "CAPA", .. })
    ));
}
