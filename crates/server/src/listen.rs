//! Where the server's TCP ports listen. An address the config names is
//! used as it is; with none, the port listens on every address of both
//! families, as ZooKeeper (a Java wildcard socket) does: `[::]` with
//! IPV6_V6ONLY off, so IPv4 clients arrive as mapped addresses. A host
//! without IPv6 gets `0.0.0.0`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use tokio::net::{TcpListener, TcpSocket};

/// What `bind` listens on for this address and port, for messages.
pub(crate) fn shown(ip: Option<IpAddr>, port: u16) -> String {
    match ip {
        Some(ip) => SocketAddr::new(ip, port).to_string(),
        None => format!("*:{port}"),
    }
}

/// Binds `ip:port`, or every address when `ip` is None.
pub(crate) fn bind(ip: Option<IpAddr>, port: u16) -> std::io::Result<TcpListener> {
    match ip {
        Some(ip) => {
            let s = if ip.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            listen(s, SocketAddr::new(ip, port))
        }
        None => match dual_stack(port) {
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => listen(
                TcpSocket::new_v4()?,
                SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port),
            ),
            r => r,
        },
    }
}

fn dual_stack(port: u16) -> std::io::Result<TcpListener> {
    let s = TcpSocket::new_v6()?;
    let off: libc::c_int = 0;
    // SAFETY: setsockopt on a socket we own, with a c_int it reads.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            &off as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    listen(s, SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port))
}

fn listen(s: TcpSocket, addr: SocketAddr) -> std::io::Result<TcpListener> {
    // As std's and tokio's bind: a restarted server may reuse the port
    // while old connections linger in TIME_WAIT.
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_wildcard_takes_both_families() {
        let l = bind(None, 0).unwrap();
        let port = l.local_addr().unwrap().port();
        for ip in ["127.0.0.1", "::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            if ip.is_ipv6() && std::net::TcpListener::bind((ip, 0)).is_err() {
                continue; // no IPv6 loopback on this host
            }
            tokio::net::TcpStream::connect((ip, port))
                .await
                .unwrap_or_else(|e| panic!("{ip}: {e}"));
        }
        let only_v4 = bind(Some(IpAddr::from([127, 0, 0, 1])), 0).unwrap();
        assert!(only_v4.local_addr().unwrap().is_ipv4());
    }
}
