//! Where the gateway calls out on a caller's behalf, and with what: a Subscription names
//! an endpoint and headers, so a caller could otherwise make the gateway call its own
//! network (a port scanner, an admin interface) with headers of its choosing. Deny by
//! default:
//! - an endpoint must start with one of the operator's `allowed_endpoints` (same scheme,
//!   host and port, and the path below the listed one); none listed, none allowed;
//! - a host name must resolve only to public addresses (no loopback, private,
//!   link-local, unspecified, multicast or reserved ones), and the call goes to the
//!   address checked, not to a second lookup; an address the operator lists as an IP
//!   literal is allowed as listed;
//! - headers only with a name on `allowed_headers`, and never `Host`, `Authorization`,
//!   `Cookie`, `Proxy-*` or a hop-by-hop header, whatever the list says;
//! - no redirects are followed.
//!
//! The places the operator names (sync targets, their OAuth token URLs, the JWKS URL)
//! are called with [`operator_client`]: a timeout, and redirects only within the same
//! scheme, host and port.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

/// `[subscriptions]` in the settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionSettings {
    /// URL prefixes a Subscription's `channel.endpoint` may start with, e.g.
    /// `https://portal.example/hooks/`. Empty: no Subscription can be made.
    pub allowed_endpoints: Vec<String>,
    /// Header names a Subscription's `channel.header` may carry (e.g. `X-Portal-Key`).
    pub allowed_headers: Vec<String>,
    /// Whether a patient's token (a `patient/` scope) may make Subscriptions for its
    /// own person; by default only system and user tokens may.
    pub patient_tokens: bool,
}

/// Never sent on a caller's behalf, whatever `allowed_headers` says.
const NEVER: &[&str] = &[
    "host",
    "authorization",
    "cookie",
    "connection",
    "content-length",
    "content-type",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
];

impl SubscriptionSettings {
    /// The endpoint, when it starts with an allowed prefix.
    pub fn endpoint(&self, endpoint: &str) -> Result<Url, String> {
        let url = Url::parse(endpoint).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http(s) URL".into());
        }
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err("must not carry a user, password or fragment".into());
        }
        if self.allowed_by(&url).is_none() {
            return Err(
                "is not among the endpoints the operator allows (subscriptions.allowed_endpoints)"
                    .into(),
            );
        }
        Ok(url)
    }

    /// The allow-list entry `url` falls under.
    fn allowed_by(&self, url: &Url) -> Option<Url> {
        self.allowed_endpoints
            .iter()
            .filter_map(|a| Url::parse(a).ok())
            .find(|allowed| {
                allowed.scheme() == url.scheme()
                    && allowed.host() == url.host()
                    && allowed.port_or_known_default() == url.port_or_known_default()
                    && under(url.path(), allowed.path())
            })
    }

    /// The headers (`Name: value`), when every name is allowed; else the index of the
    /// first that is not, and why.
    pub fn headers(&self, headers: &[&str]) -> Result<Vec<(String, String)>, (usize, String)> {
        headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let (name, value) = h
                    .split_once(':')
                    .ok_or((i, "must be `Name: value`".to_owned()))?;
                let name = name.trim();
                let lower = name.to_ascii_lowercase();
                if NEVER.contains(&lower.as_str()) || lower.starts_with("proxy-") {
                    return Err((i, format!("{name} is never sent on a caller's behalf")));
                }
                if !self.allowed_headers.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                    return Err((
                        i,
                        format!("{name} is not among the headers the operator allows (subscriptions.allowed_headers)"),
                    ));
                }
                Ok((name.to_owned(), value.trim().to_owned()))
            })
            .collect()
    }

    /// Where to connect for `url`: `None` for an address the operator lists as an IP
    /// literal (connect to it as it is), else the host name and the public address it
    /// resolves to. Refused when the name resolves to any address that is not public.
    pub async fn address(&self, url: &Url) -> Result<Option<(String, SocketAddr)>, String> {
        let refused = || "the endpoint is not allowed".to_owned();
        let allowed = self.allowed_by(url).ok_or_else(refused)?;
        let host = url.host_str().ok_or_else(refused)?;
        let port = url.port_or_known_default().ok_or_else(refused)?;
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            // Listed as it is by the operator (the prefix matched it), or public.
            let listed = allowed.host_str() == Some(host);
            return if listed || public(ip) {
                Ok(None)
            } else {
                Err(refused())
            };
        }
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| "the endpoint's host name does not resolve".to_owned())?
            .collect();
        if addresses.is_empty() || addresses.iter().any(|a| !public(a.ip())) {
            return Err(
                "the endpoint's host name resolves to an address that is not public".into(),
            );
        }
        Ok(Some((host.to_owned(), addresses[0])))
    }
}

/// Whether `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| prefix.ends_with('/') || rest.starts_with('/'))
}

/// Whether an address is on the public internet: not loopback, private, link-local,
/// unspecified, multicast, shared (CGNAT), documentation or reserved.
pub fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public(IpAddr::V4(v4)),
            None => {
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local())
            }
        },
    }
}

/// The HTTP client for the addresses the operator configures (sync targets, OAuth token
/// URLs, the JWKS URL): `timeout` on each call (connecting within at most 5 s), and at
/// most 5 redirects, each to the same scheme, host and port as the address named.
pub fn operator_client(timeout: Duration) -> reqwest::ClientBuilder {
    let same_origin = reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first();
        let origin = |u: &Url| {
            (
                u.scheme().to_owned(),
                u.host_str().map(str::to_owned),
                u.port_or_known_default(),
            )
        };
        match first {
            Some(first)
                if attempt.previous().len() <= 5 && origin(first) == origin(attempt.url()) =>
            {
                attempt.follow()
            }
            _ => attempt.stop(),
        }
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(same_origin)
        .user_agent(concat!("pkgw/", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(endpoints: &[&str], headers: &[&str]) -> SubscriptionSettings {
        SubscriptionSettings {
            allowed_endpoints: endpoints.iter().map(|s| (*s).to_owned()).collect(),
            allowed_headers: headers.iter().map(|s| (*s).to_owned()).collect(),
            patient_tokens: false,
        }
    }

    #[test]
    fn only_endpoints_under_an_allowed_prefix() {
        let s = settings(
            &["https://portal.example/hooks/", "http://10.1.2.3:8080/in"],
            &[],
        );
        assert!(s.endpoint("https://portal.example/hooks/a").is_ok());
        assert!(s.endpoint("http://10.1.2.3:8080/in/x").is_ok());
        for refused in [
            "https://portal.example/hooksX",
            "https://portal.example/other",
            "http://portal.example/hooks/a",
            "https://portal.example:8443/hooks/a",
            "https://portal.example.evil/hooks/a",
            "https://user:pw@portal.example/hooks/a",
            "http://10.1.2.3:8081/in",
            "http://10.1.2.3:8080/inside",
            "http://127.0.0.1/",
            "file:///etc/passwd",
        ] {
            assert!(s.endpoint(refused).is_err(), "{refused}");
        }
        assert!(
            settings(&[], &[])
                .endpoint("https://portal.example/hooks/a")
                .is_err()
        );
    }

    #[test]
    fn only_allowed_header_names_and_never_credentials_or_host() {
        let s = settings(&[], &["X-Portal-Key", "Authorization", "Host"]);
        assert_eq!(
            s.headers(&["x-portal-key: 1"]).unwrap(),
            vec![("x-portal-key".to_owned(), "1".to_owned())]
        );
        for (i, bad) in [
            "Authorization: Bearer x",
            "Host: a",
            "Proxy-Authorization: x",
            "X-Other: 1",
            "nocolon",
        ]
        .iter()
        .enumerate()
        {
            let headers = ["X-Portal-Key: 1", bad];
            assert_eq!(s.headers(&headers).unwrap_err().0, 1, "{i}: {bad}");
        }
    }

    #[test]
    fn public_addresses_only() {
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!public(private.parse().unwrap()), "{private}");
        }
        for open in ["8.8.8.8", "2001:4860:4860::8888", "193.10.1.1"] {
            assert!(public(open.parse().unwrap()), "{open}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_a_listed_literal_is_not() {
        let s = settings(&["http://localhost:9/", "http://127.0.0.1:9/"], &[]);
        let name = s.endpoint("http://localhost:9/x").unwrap();
        assert!(s.address(&name).await.is_err());
        let literal = s.endpoint("http://127.0.0.1:9/x").unwrap();
        assert_eq!(s.address(&literal).await, Ok(None));
    }
}
