//! Which pages may open relay sessions, judged by the WebSocket request's `Origin`.

use http::HeaderValue;

/// The Origin allowlist. The page's own origin (an `Origin` whose host and port equal the
/// request's `Host`) is always allowed; others only if listed. A request without `Origin` does
/// not come from a browser page and is let through to the other checks.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    extra: Vec<String>,
    any: bool,
}

impl Origins {
    /// Also allows each of `origins` (`https://mail.example.com`); `*` allows every origin.
    pub fn allow(mut self, origins: impl IntoIterator<Item = String>) -> Self {
        for origin in origins {
            if origin == "*" {
                self.any = true;
            } else {
                self.extra.push(normalise(&origin));
            }
        }
        self
    }

    /// Whether a request with `origin` and `host` headers may open a session.
    pub(crate) fn allows(&self, origin: Option<&HeaderValue>, host: Option<&HeaderValue>) -> bool {
        let Some(origin) = origin else { return true };
        if self.any {
            return true;
        }
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = normalise(origin);
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        let host = host
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        if authority.is_some() && authority == host.as_deref() {
            return true;
        }
        self.extra.contains(&origin)
    }
}

fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(o: &Origins, origin: Option<&str>, host: Option<&str>) -> bool {
        let origin = origin.map(|v| HeaderValue::from_str(v).unwrap());
        let host = host.map(|v| HeaderValue::from_str(v).unwrap());
        o.allows(origin.as_ref(), host.as_ref())
    }

    #[test]
    fn own_origin_listed_origins_and_nothing_else() {
        let own = Origins::default();
        assert!(allows(
            &own,
            Some("http://127.0.0.1:8080"),
            Some("127.0.0.1:8080")
        ));
        assert!(allows(
            &own,
            Some("https://Mail.Example.com"),
            Some("mail.example.com")
        ));
        assert!(allows(&own, None, Some("mail.example.com")));
        assert!(!allows(
            &own,
            Some("https://evil.example"),
            Some("mail.example.com")
        ));
        assert!(!allows(
            &own,
            Some("http://127.0.0.1:9999"),
            Some("127.0.0.1:8080")
        ));
        assert!(!allows(&own, Some("null"), Some("mail.example.com")));
        assert!(!allows(&own, Some("https://mail.example.com"), None));

        let listed = Origins::default().allow(["https://app.example.com/".to_owned()]);
        assert!(allows(
            &listed,
            Some("https://app.example.com"),
            Some("relay.example.com")
        ));
        assert!(!allows(
            &listed,
            Some("http://app.example.com"),
            Some("relay.example.com")
        ));
        assert!(!allows(
            &listed,
            Some("https://app.example.com.evil"),
            Some("relay.example.com")
        ));

        let any = Origins::default().allow(["*".to_owned()]);
        assert!(allows(
            &any,
            Some("https://anything.example"),
            Some("relay.example.com")
        ));
    }
}
