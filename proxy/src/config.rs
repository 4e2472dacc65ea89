//! Command-line flags and environment variables, turned into the server's settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;
use webpop_shared::secret::Secret;

use crate::client_ip::TrustedProxies;
use crate::host::AllowedHosts;
use crate::policy::{HostPattern, Nat64Prefix, TargetPolicy};
use crate::relay::{Origins, RelayConfig};
use crate::resolve::Resolver;
use crate::server::ServeOptions;
use crate::tls::{self, TlsError};

/// webpop's relay: serves the webpop web app and relays its WebSocket connections to POP3
/// servers as TCP. The page does its own TLS end to end; the relay only sees ciphertext.
///
/// By default the relay reaches ports 995 and 110 on public addresses only, admits WebSockets
/// only from pages it served itself, and serves plain HTTP on 127.0.0.1:8080 (put it behind a
/// TLS reverse proxy, or give it --tls-cert and --tls-key). Every flag can also be set with the
/// environment variable shown.
#[derive(Debug, Parser)]
#[command(name = "webpop-proxy", version, about, long_about)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "WEBPOP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory holding the built web app (trunk's dist/).
    #[arg(long, env = "WEBPOP_WEB_ROOT", default_value = "dist")]
    pub web_root: PathBuf,

    /// Serve HTTPS and WSS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "WEBPOP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key for --tls-cert.
    #[arg(long, env = "WEBPOP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Target ports the relay may connect to (repeat or comma-separate).
    #[arg(long = "allow-port", env = "WEBPOP_ALLOW_PORTS", value_delimiter = ',', default_values_t = crate::policy::DEFAULT_PORTS)]
    pub allow_ports: Vec<u16>,

    /// Only these targets: exact names (pop.example.com), wildcards (*.example.com: subdomains
    /// only) or address ranges (192.0.2.0/24). A range listed here is allowed even if private.
    #[arg(long = "allow-host", env = "WEBPOP_ALLOW_HOSTS", value_delimiter = ',')]
    pub allow_hosts: Vec<HostPattern>,

    /// Never these targets (same forms as --allow-host); wins over --allow-host.
    #[arg(long = "deny-host", env = "WEBPOP_DENY_HOSTS", value_delimiter = ',')]
    pub deny_hosts: Vec<HostPattern>,

    /// The site's own NAT64 prefixes (/96; repeat or comma-separate). Addresses inside one, and
    /// inside 64:ff9b::/96, are judged by the IPv4 address they embed.
    #[arg(
        long = "nat64-prefix",
        env = "WEBPOP_NAT64_PREFIXES",
        value_delimiter = ','
    )]
    pub nat64_prefixes: Vec<Nat64Prefix>,

    /// Also allow loopback, private, link-local, CGNAT and the other reserved ranges. For
    /// tests and the local demo only: it lets users reach your internal network. Without a
    /// token, the relay then answers only requests addressed to an IP or localhost (so a
    /// rebound DNS name cannot use it); to reach one LAN server, prefer --allow-host <CIDR>.
    #[arg(long, env = "WEBPOP_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,

    /// Also admit WebSockets from pages on these origins (https://mail.example.com); `*` admits
    /// any. The relay's own origin is always admitted.
    #[arg(
        long = "allow-origin",
        env = "WEBPOP_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub allow_origins: Vec<String>,

    /// Also answer for this host name (repeat or comma-separate): the name users reach the
    /// relay by, as the browser sends it in `Host` (through a reverse proxy too). Without it,
    /// only localhost and IP addresses are answered, so a page whose DNS name was rebound to
    /// this relay cannot use it.
    #[arg(
        long = "public-host",
        env = "WEBPOP_PUBLIC_HOSTS",
        value_delimiter = ','
    )]
    pub public_hosts: Vec<String>,

    /// Require this access token (prefer the environment or --token-file: command lines are
    /// visible to other users).
    #[arg(
        long,
        env = "WEBPOP_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,

    /// Require the access token held in this file (surrounding whitespace ignored).
    #[arg(long, env = "WEBPOP_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Reverse proxies (addresses or ranges) whose X-Forwarded-For header names the client.
    #[arg(
        long = "trusted-proxy",
        env = "WEBPOP_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpNet>,

    /// Ask these name servers (address, or address:port; repeat or comma-separate) instead of
    /// those in /etc/resolv.conf. Search domains are never used: names are looked up as given.
    #[arg(long = "name-server", env = "WEBPOP_NAME_SERVERS", value_delimiter = ',', value_parser = parse_name_server)]
    pub name_servers: Vec<SocketAddr>,

    /// Longest wait for DNS and the TCP connection to the mail server.
    #[arg(long, env = "WEBPOP_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Close a session after this long with no bytes either way.
    #[arg(long, env = "WEBPOP_IDLE_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Close any session after this long.
    #[arg(long, env = "WEBPOP_MAX_LIFETIME", default_value = "4h", value_parser = parse_duration)]
    pub max_lifetime: Duration,

    /// Most relay sessions open at once. Each uses two file descriptors; the relay raises its
    /// own open-files limit as far as the system allows.
    #[arg(long, env = "WEBPOP_MAX_CONNECTIONS", default_value_t = 5_000)]
    pub max_connections: usize,

    /// Most relay sessions open at once per client address (IPv6: per /64).
    #[arg(long, env = "WEBPOP_MAX_PER_IP", default_value_t = 32)]
    pub max_per_ip: usize,

    /// Most new relay sessions one client address (IPv6: one /64) may start per minute, so that
    /// nobody can try passwords through the relay fast enough to get its address banned by
    /// mail providers; 0 for no cap. A client may start this many at once, then one every
    /// 60 s / this number.
    #[arg(long, env = "WEBPOP_SESSIONS_PER_MINUTE", default_value_t = 30)]
    pub sessions_per_minute: u32,

    /// Most HTTP connections not yet upgraded to relay sessions.
    #[arg(long, env = "WEBPOP_MAX_HTTP_CONNECTIONS", default_value_t = 1024)]
    pub max_http_connections: usize,

    /// Most of those from one client address (IPv6: per /64), so one client cannot take them
    /// all; --trusted-proxy addresses are exempt.
    #[arg(long, env = "WEBPOP_MAX_HTTP_PER_IP", default_value_t = 64)]
    pub max_http_per_ip: usize,

    /// Time a client has to finish its TLS handshake and request headers.
    #[arg(long, env = "WEBPOP_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Also run the demo mailbox (sample mail over POP3S on 127.0.0.1, account demo/demo) and
    /// let the relay reach it; the page offers it from `/demo.json`.
    #[arg(long, env = "WEBPOP_DEMO")]
    pub demo: bool,

    /// Worker threads. One moves bytes with the lowest latency and is enough for gigabytes a
    /// second; more help a relay that serves TLS itself to many users.
    #[arg(long, env = "WEBPOP_THREADS", default_value_t = 1)]
    pub threads: usize,

    /// On SIGINT or SIGTERM, how long open sessions may go on before they are closed.
    #[arg(long, env = "WEBPOP_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

/// Why the flags could not be turned into settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The token file could not be read.
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token is empty or holds a line break or NUL.
    #[error("the access token is empty or holds a line break or NUL byte")]
    BadToken,
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Everything the server needs, built from [`Args`].
#[derive(Debug)]
pub struct Settings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The web app's files.
    pub web_root: PathBuf,
    /// Accept-loop options (TLS, header timeout, HTTP connection cap).
    pub serve: ServeOptions,
    /// The relay's policy and limits.
    pub relay: RelayConfig,
    /// How long sessions may drain on shutdown.
    pub drain_timeout: Duration,
}

impl Args {
    /// Reads files named by the flags and builds the settings.
    pub fn into_settings(self) -> Result<Settings, ConfigError> {
        let token = match (self.token, &self.token_file) {
            (Some(token), _) => Some(token),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::TokenFile {
                        path: path.display().to_string(),
                        source,
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let token = token
            .map(|t| match Secret::token(t) {
                Ok(secret) if !secret.expose().is_empty() => Ok(secret),
                _ => Err(ConfigError::BadToken),
            })
            .transpose()?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
            _ => None,
        };
        let policy = TargetPolicy::default()
            .ports(self.allow_ports)
            .allow(self.allow_hosts)
            .deny(self.deny_hosts)
            .nat64_prefixes(self.nat64_prefixes)
            .allow_reserved_ranges(self.allow_private_targets);
        Ok(Settings {
            listen: self.listen,
            web_root: self.web_root,
            serve: ServeOptions {
                tls,
                header_timeout: self.header_timeout,
                max_http_connections: self.max_http_connections,
                max_http_connections_per_client: self.max_http_per_ip,
                allowed_hosts: AllowedHosts::default().with_names(self.public_hosts),
                ..ServeOptions::default()
            },
            relay: RelayConfig {
                policy,
                resolver: if self.name_servers.is_empty() {
                    Resolver::system()
                } else {
                    Resolver::name_servers(self.name_servers)
                },
                origins: Origins::default().allow(self.allow_origins),
                token,
                trusted_proxies: TrustedProxies::new(self.trusted_proxies),
                connect_timeout: self.connect_timeout,
                idle_timeout: self.idle_timeout,
                max_lifetime: self.max_lifetime,
                max_sessions: self.max_connections,
                max_sessions_per_client: self.max_per_ip,
                new_sessions_per_client_per_minute: self.sessions_per_minute,
                demo: None,
            },
            drain_timeout: self.drain_timeout,
        })
    }
}

/// Parses a name server: `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53` or `[2001:db8::53]:53`.
fn parse_name_server(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    text.parse::<SocketAddr>()
        .or_else(|_| {
            text.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .map_err(|_| format!("`{text}` is not a name server address like 192.0.2.53 or [::1]:5353"))
}

/// Parses `500ms`, `30s`, `10m`, `4h`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 10m or 4h"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "" | "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        _ => return Err(format!("`{text}`: the unit must be ms, s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(4 * 3600)));
        assert!(parse_duration("10 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn defaults_are_safe_and_flags_parse() {
        let args = Args::try_parse_from(["webpop-proxy"]).unwrap();
        assert_eq!(args.allow_ports, vec![995, 110]);
        assert!(!args.allow_private_targets);
        let settings = args.into_settings().unwrap();
        assert!(settings.relay.token.is_none());
        assert!(!settings.relay.policy.allows_reserved_ranges());
        assert_eq!(settings.serve.max_http_connections_per_client, 64);

        let args = Args::try_parse_from([
            "webpop-proxy",
            "--allow-port",
            "995,2995",
            "--allow-host",
            "*.example.com",
            "--allow-host",
            "192.0.2.0/24",
            "--trusted-proxy",
            "127.0.0.1/32",
            "--token",
            "s3cret",
            "--idle-timeout",
            "90s",
            "--max-http-per-ip",
            "8",
            "--nat64-prefix",
            "2001:db8:64::/96",
            "--public-host",
            "mail.example.com",
        ])
        .unwrap();
        assert_eq!(args.allow_ports, vec![995, 2995]);
        assert_eq!(args.allow_hosts.len(), 2);
        let settings = args.into_settings().unwrap();
        assert_eq!(settings.relay.idle_timeout, Duration::from_secs(90));
        assert_eq!(settings.serve.max_http_connections_per_client, 8);
        assert_eq!(
            settings.serve.allowed_hosts,
            AllowedHosts::default().with_names(["mail.example.com".to_owned()])
        );
        assert_eq!(settings.relay.token.unwrap().expose(), "s3cret");
        assert!(Args::try_parse_from(["webpop-proxy", "--allow-host", "*"]).is_err());
        assert!(Args::try_parse_from(["webpop-proxy", "--tls-cert", "c.pem"]).is_err());
        assert!(Args::try_parse_from(["webpop-proxy", "--nat64-prefix", "2001:db8::/64"]).is_err());
        let args =
            Args::try_parse_from(["webpop-proxy", "--name-server", "127.0.0.1:5353,::1"]).unwrap();
        assert_eq!(
            args.name_servers,
            vec![
                "127.0.0.1:5353".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert!(Args::try_parse_from(["webpop-proxy", "--name-server", "dns.example"]).is_err());
    }

    #[test]
    fn debug_output_hides_the_token() {
        let args = Args::try_parse_from(["webpop-proxy", "--token", "hunter2"]).unwrap();
        let settings = args.into_settings().unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
