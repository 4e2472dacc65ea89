//! Test support for webpop.
