//! Arbitrary text as the relay endpoint's query string (what a page, or anyone, sends to
//! `/relay?...`) and as a page's flow-control message (a text frame the relay parses), and
//! arbitrary close codes and reasons as the page reads them.
//!
//! Properties: nothing panics; a query that parses names a valid target, and writing it out
//! and parsing it again gives the same request; an acknowledgement that parses is written out
//! as exactly the text it came from (one spelling per message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webpop_shared::relay::flow::Ack;
use webpop_shared::relay::{RelayError, RelayRequest, Target};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = RelayRequest::from_query(query) {
        let again = RelayRequest::from_query(&request.to_query()).expect("its own query parses");
        assert_eq!(again.target, request.target);
        assert!(Target::new(request.target.host(), request.target.port()).is_ok());
    }
    if let Ok(ack) = Ack::parse(query) {
        assert_eq!(ack.to_string(), query);
    }
    if let [a, b, reason @ ..] = data {
        let target = Target::new("pop.example.com", 995).unwrap();
        let code = u16::from_be_bytes([*a, *b]);
        let _ = RelayError::from_close(&target, code, &String::from_utf8_lossy(reason));
    }
});
