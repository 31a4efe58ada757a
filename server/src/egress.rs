//! The one policy for every outbound address a tenant chooses: model provider endpoints,
//! Entra ID authorities, identity provider issuers and the URLs their discovery names, and
//! plugin endpoints.
//!
//! Only public internet addresses are reachable by default. Loopback, link-local (cloud
//! metadata services live there), unspecified, multicast, broadcast, documentation,
//! private and shared ranges are refused unless the operator's `egress.allow` list admits
//! them; the server's own Postgres and Redis are refused always. Names are resolved by the
//! policy's own resolver, which hands the HTTP client only addresses that passed, so the
//! connection goes to the address that was checked (a name that resolves to a public
//! address when saved and to 127.0.0.1 when used is still refused). Clients made here
//! never follow redirects. A refusal names the setting that would allow the address.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;

/// Why an outbound address is refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EgressError {
    /// Not an http(s) URL with a host.
    #[error("must be an http(s) URL with a host")]
    NotHttp,
    /// The address is of a class tenants may not reach.
    #[error(
        "{host} is {address}, a {class} address the server does not connect to for tenants \
         (an operator can admit it with egress.allow)"
    )]
    Refused {
        /// The host as written.
        host: String,
        /// The address it is or resolves to.
        address: IpAddr,
        /// What kind of address that is.
        class: &'static str,
    },
    /// The address is the server's own database or cache.
    #[error(
        "{host} is this server's own database or cache ({address}), never reachable for tenants"
    )]
    OwnService {
        /// The host as written.
        host: String,
        /// The address and port.
        address: SocketAddr,
    },
    /// The URL carries a user name or password.
    #[error("must not carry a user name or password; credentials have a field of their own")]
    Userinfo,
    /// The name does not resolve.
    #[error("{0} does not resolve to any address")]
    Unresolvable(String),
}

/// The outbound address policy; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allow: Arc<[IpNet]>,
    own: Arc<[SocketAddr]>,
}

impl Egress {
    /// A policy admitting `allow` besides public addresses and never the server's `own`
    /// services.
    pub fn new(allow: Vec<IpNet>, own: Vec<SocketAddr>) -> Self {
        Self {
            allow: allow.into(),
            own: own.into(),
        }
    }

    /// Whether `address` may be connected to, and if not, what it is.
    ///
    /// # Errors
    /// [`EgressError::Refused`] naming the address class.
    pub fn check_address(&self, host: &str, address: IpAddr) -> Result<(), EgressError> {
        let address = canonical(address);
        if self.allow.iter().any(|net| net.contains(&address)) {
            return Ok(());
        }
        match class(address) {
            None => Ok(()),
            Some(class) => Err(EgressError::Refused {
                host: host.to_owned(),
                address,
                class,
            }),
        }
    }

    /// Checks `url` before it is stored or used: an http(s) URL whose host (resolved
    /// now, when it is a name) is a reachable address and not the server's own service.
    ///
    /// # Errors
    /// [`EgressError`] saying why not.
    pub async fn check_url(&self, url: &str) -> Result<(), EgressError> {
        let parsed = url::Url::parse(url).map_err(|_| EgressError::NotHttp)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(EgressError::NotHttp);
        }
        // A secret in a URL ends up in logs, audit details and settings listings.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(EgressError::Userinfo);
        }
        let port = parsed.port_or_known_default().ok_or(EgressError::NotHttp)?;
        let addresses: Vec<IpAddr> = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(url::Host::Domain(name)) => resolve(name).await?,
            None => return Err(EgressError::NotHttp),
        };
        let host = parsed.host_str().unwrap_or_default();
        for address in addresses {
            self.check_address(host, address)?;
            let target = SocketAddr::new(canonical(address), port);
            if self.own.contains(&target) {
                return Err(EgressError::OwnService {
                    host: host.to_owned(),
                    address: target,
                });
            }
        }
        Ok(())
    }

    /// A TCP connection to `host:port` (a name or an address) at the first of its
    /// addresses this policy admits, for clients that bring no resolver hook (gRPC).
    ///
    /// # Errors
    /// [`EgressError`] when no address passes; an I/O error when none answers.
    pub async fn connect(&self, host: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addresses = match host.parse::<IpAddr>() {
            Ok(address) => vec![canonical(address)],
            Err(_) => resolve(host).await.map_err(std::io::Error::other)?,
        };
        let mut last = None;
        for address in addresses {
            let target = SocketAddr::new(address, port);
            let admitted = self.check_address(host, address).and_then(|()| {
                if self.own.contains(&target) {
                    Err(EgressError::OwnService {
                        host: host.to_owned(),
                        address: target,
                    })
                } else {
                    Ok(())
                }
            });
            if let Err(err) = admitted {
                last = Some(std::io::Error::other(err));
                continue;
            }
            match tokio::net::TcpStream::connect(target).await {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(stream);
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last
            .unwrap_or_else(|| std::io::Error::other(EgressError::Unresolvable(host.to_owned()))))
    }

    /// An HTTP client builder whose every connection passes this policy: names resolve
    /// through it, redirects are not followed, connecting takes at most `connect_timeout`.
    pub fn client(&self, connect_timeout: Duration) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(self.clone()))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
    }
}

impl reqwest::dns::Resolve for Egress {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses = resolve(&host).await?;
            let mut passed = Vec::with_capacity(addresses.len());
            for address in addresses {
                policy.check_address(&host, address)?;
                passed.push(SocketAddr::new(address, 0));
            }
            let addrs: reqwest::dns::Addrs = Box::new(passed.into_iter());
            Ok(addrs)
        })
    }
}

/// Every address `name` resolves to now.
async fn resolve(name: &str) -> Result<Vec<IpAddr>, EgressError> {
    let found: Vec<IpAddr> = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|_| EgressError::Unresolvable(name.to_owned()))?
        .map(|addr| canonical(addr.ip()))
        .collect();
    if found.is_empty() {
        return Err(EgressError::Unresolvable(name.to_owned()));
    }
    Ok(found)
}

/// IPv4 addresses written as IPv6 (`::ffff:127.0.0.1`) are judged as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The class of a non-public address, `None` for a public one.
fn class(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => class_v4(v4),
        IpAddr::V6(v6) => class_v6(v6),
    }
}

fn class_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let class = if ip.is_unspecified() || a == 0 {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        "cloud metadata"
    } else if ip.is_link_local() {
        "link-local"
    } else if ip.is_private() {
        "private"
    } else if a == 100 && (64..128).contains(&b) {
        "shared (carrier-grade NAT)"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_broadcast() || a >= 240 {
        "reserved"
    } else if (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113)
    {
        "documentation"
    } else if a == 198 && (18..20).contains(&b) {
        "benchmarking"
    } else if (a, b, c) == (192, 0, 0) {
        "protocol assignment"
    } else {
        return None;
    };
    Some(class)
}

fn class_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    let class = if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        "cloud metadata"
    } else if first & 0xffc0 == 0xfe80 {
        "link-local"
    } else if first & 0xfe00 == 0xfc00 {
        "private (unique local)"
    } else if ip.is_multicast() {
        "multicast"
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        "documentation"
    } else if first == 0x64 && ip.segments()[1] == 0xff9b {
        // NAT64 can reach any IPv4 address, private ones included.
        "NAT64"
    } else if first & 0xe000 != 0x2000 {
        // Outside 2000::/3, the global unicast space.
        "reserved"
    } else {
        return None;
    };
    Some(class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> Option<&'static str> {
        match Egress::default().check_address("h", ip.parse().unwrap()) {
            Err(EgressError::Refused { class, .. }) => Some(class),
            _ => None,
        }
    }

    #[test]
    fn every_non_public_class_is_refused() {
        for (ip, class) in [
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("169.254.10.1", "link-local"),
            ("fe80::1", "link-local"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("fd12::1", "private (unique local)"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("64:ff9b::a00:1", "NAT64"),
        ] {
            assert_eq!(refused(ip), Some(class), "{ip}");
        }
        for public in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert_eq!(refused(public), None, "{public}");
        }
    }

    #[test]
    fn the_allow_list_admits_and_own_services_stay_refused() {
        let policy = Egress::new(
            vec!["127.0.0.0/8".parse().unwrap()],
            vec!["127.0.0.1:5432".parse().unwrap()],
        );
        assert_eq!(
            policy.check_address("h", "127.0.0.1".parse().unwrap()),
            Ok(())
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert_eq!(policy.check_url("http://127.0.0.1:8080/v1").await, Ok(()));
            assert!(matches!(
                policy.check_url("http://127.0.0.1:5432").await,
                Err(EgressError::OwnService { .. })
            ));
            assert_eq!(
                policy.check_url("file:///etc/passwd").await,
                Err(EgressError::NotHttp)
            );
            assert!(matches!(
                Egress::default().check_url("http://localhost:9/").await,
                Err(EgressError::Refused {
                    class: "loopback",
                    ..
                })
            ));
        });
    }
}
