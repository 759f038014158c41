//! The one outbound guard: what a service may connect to when a *user* chose the address (a
//! polled feed's URL, a webhook device's address). A server-side request forgery reaches the
//! cloud's metadata service, Redis on loopback or an intranet host through such an address, so
//! the guard refuses every address that is not public — checked on the literal IP of a URL, on
//! every address a name resolves to (at registration and again at each connection: a name may
//! change what it resolves to), and on every redirect — and no proxy variable can route around
//! it. `allow_private` lifts it, for tests and the loopback demo.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Whether `ip` is not a public unicast address: loopback, private, link-local, shared
/// (100.64/10), benchmarking (198.18/15), reserved (240/4), unspecified, broadcast,
/// multicast, documentation; for IPv6 also unique-local and link-local, and any IPv6 form that
/// carries an IPv4 address (mapped, compatible, NAT64 64:ff9b::/96, 6to4 2002::/16), judged
/// by that address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
                || o[0] >= 240 // reserved
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                IpAddr::V4(Ipv4Addr::new(
                    (hi >> 8) as u8,
                    hi as u8,
                    (lo >> 8) as u8,
                    lo as u8,
                ))
            };
            // IPv4-compatible (::a.b.c.d, deprecated but routable by some stacks).
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_internal(embedded(s[6], s[7]));
            }
            // NAT64 (64:ff9b::/96) and 6to4 (2002:a.b.c.d::/16) reach the IPv4 inside.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_internal(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_internal(embedded(s[1], s[2]));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        }
    }
}

/// A DNS resolver that drops internal addresses, for a `reqwest` client ([`guarded`]).
#[derive(Clone)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs = public_addrs(&host, allow_private).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

async fn public_addrs(
    host: &str,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await?
        .filter(|a| allow_private || !is_internal(a.ip()))
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} resolves only to internal addresses (refused)").into());
    }
    Ok(addrs)
}

/// Refuses a URL whose host is a literal internal IP (a resolver never sees those).
pub fn check_url(url: &url::Url, allow_private: bool) -> Result<(), String> {
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    match literal {
        Some(ip) if !allow_private && is_internal(ip) => {
            Err(format!("{url}: internal address {ip} refused"))
        }
        _ => Ok(()),
    }
}

/// Checks a user-given destination before it is stored (a webhook's address): an http(s) URL
/// whose literal IP, or every address its name resolves to now, is public.
pub async fn check_destination(address: &str, allow_private: bool) -> Result<(), String> {
    let url = url::Url::parse(address).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must be an http(s) URL".into());
    }
    check_url(&url, allow_private)?;
    if allow_private {
        return Ok(());
    }
    match url.host() {
        Some(url::Host::Domain(name)) => public_addrs(name, false)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Some(_) => Ok(()),
        None => Err("has no host".into()),
    }
}

/// `builder` with the guard: names resolved through [`GuardedResolver`], and no proxy from
/// the environment (`HTTP_PROXY` and the like would otherwise route around it). Redirects are
/// the caller's to forbid or to check with [`check_url`].
pub fn guarded(builder: reqwest::ClientBuilder, allow_private: bool) -> reqwest::ClientBuilder {
    builder
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .no_proxy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_non_public_address_is_internal_whatever_its_form() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "198.18.0.1",
            "198.19.255.1",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:2800:220:1:248:1893:25c8:1946",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_destination_must_be_public_unless_private_is_allowed() {
        for bad in [
            "http://169.254.169.254/latest/meta-data",
            "http://127.0.0.1:6379/",
            "http://[::ffff:10.0.0.1]/",
            "http://localhost:6379/",
            "ftp://example.com/",
            "not a url",
        ] {
            assert!(check_destination(bad, false).await.is_err(), "{bad}");
        }
        assert!(
            check_destination("http://127.0.0.1:8099/", true)
                .await
                .is_ok()
        );
    }
}
