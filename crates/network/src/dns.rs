//! The embedded DNS server of user-defined networks: a UDP socket and a TCP listener on
//! 127.0.0.11:53 inside each such container's namespace, served by one thread in berthd
//! (a TCP connection gets a short-lived thread of its own). It answers the names,
//! short ids and aliases of containers that share a network with the asker, and relays
//! every other query, as raw packets, to the upstream servers from the host's namespace
//! (so even a host resolver on 127.0.0.53 works), as Docker's resolver does.

use std::collections::HashMap;
use std::io;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The address the resolver listens on inside containers.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Docker answers its own names with this TTL.
const TTL: u32 = 600;

/// Finds the addresses (IPv4 and IPv6) `name` has for the container asking.
pub type Lookup = dyn Fn(&str, &str) -> Vec<std::net::IpAddr> + Send + Sync;

struct Served {
    socket: Arc<UdpSocket>,
    tcp: Arc<TcpListener>,
    upstream: Vec<SocketAddr>,
}

/// The resolver thread and the sockets it serves.
pub struct Resolver {
    served: Mutex<HashMap<String, Served>>,
    /// Written to wake the thread when the set of sockets changes.
    wake: OwnedFd,
    lookup: Box<Lookup>,
}

impl Resolver {
    /// Starts the thread.
    pub fn start(lookup: Box<Lookup>) -> io::Result<Arc<Self>> {
        let wake = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?;
        let r = Arc::new(Resolver {
            served: Mutex::default(),
            wake,
            lookup,
        });
        let me = r.clone();
        std::thread::Builder::new()
            .name("dns".into())
            .spawn(move || me.run())?;
        Ok(r)
    }

    /// Serves a container: binds 127.0.0.11:53 inside its namespace (pinned at `netns`).
    pub fn serve(
        &self,
        container_id: &str,
        netns: &Path,
        upstream: Vec<SocketAddr>,
    ) -> io::Result<()> {
        let file = std::fs::File::open(netns)?;
        let fd = file.as_fd().try_clone_to_owned()?;
        let (socket, tcp) = std::thread::spawn(move || -> io::Result<(UdpSocket, TcpListener)> {
            rustix::thread::move_into_link_name_space(
                fd.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            Ok((
                UdpSocket::bind((ADDRESS, 53))?,
                TcpListener::bind((ADDRESS, 53))?,
            ))
        })
        .join()
        .map_err(|_| io::Error::other("dns thread panicked"))??;
        socket.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        self.served.lock().expect("not poisoned").insert(
            container_id.to_string(),
            Served {
                socket: Arc::new(socket),
                tcp: Arc::new(tcp),
                upstream,
            },
        );
        self.poke();
        Ok(())
    }

    /// Whether the container is served.
    pub fn serves(&self, container_id: &str) -> bool {
        self.served
            .lock()
            .expect("not poisoned")
            .contains_key(container_id)
    }

    /// Stops serving a container.
    pub fn stop(&self, container_id: &str) {
        if self
            .served
            .lock()
            .expect("not poisoned")
            .remove(container_id)
            .is_some()
        {
            self.poke();
        }
    }

    fn poke(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    fn run(self: &Arc<Self>) {
        let mut buf = vec![0u8; 4096];
        loop {
            type Entry = (String, Arc<UdpSocket>, Arc<TcpListener>, Vec<SocketAddr>);
            let current: Vec<Entry> = self
                .served
                .lock()
                .expect("not poisoned")
                .iter()
                .map(|(id, s)| {
                    (
                        id.clone(),
                        s.socket.clone(),
                        s.tcp.clone(),
                        s.upstream.clone(),
                    )
                })
                .collect();
            let mut fds = vec![rustix::event::PollFd::new(
                &self.wake,
                rustix::event::PollFlags::IN,
            )];
            for (_, s, t, _) in &current {
                fds.push(rustix::event::PollFd::new(
                    s.as_ref(),
                    rustix::event::PollFlags::IN,
                ));
                fds.push(rustix::event::PollFd::new(
                    t.as_ref(),
                    rustix::event::PollFlags::IN,
                ));
            }
            if rustix::event::poll(&mut fds, None).is_err() {
                continue;
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            if ready[0] {
                let mut drain = [0u8; 8];
                let _ = rustix::io::read(&self.wake, &mut drain);
            }
            for (i, (id, socket, tcp, upstream)) in current.iter().enumerate() {
                if ready[1 + 2 * i] {
                    while let Ok((n, from)) = socket.recv_from(&mut buf) {
                        self.answer(id, socket, upstream, &buf[..n], from);
                    }
                }
                if ready[2 + 2 * i] {
                    while let Ok((conn, _)) = tcp.accept() {
                        let (me, id, upstream) = (self.clone(), id.clone(), upstream.clone());
                        std::thread::spawn(move || me.serve_tcp(&id, conn, &upstream));
                    }
                }
            }
        }
    }

    /// Answers one query: from the containers' names if it is one of theirs, else by
    /// relaying it (on a short-lived thread, so a slow upstream stalls nobody else).
    fn answer(
        &self,
        container: &str,
        socket: &Arc<UdpSocket>,
        upstream: &[SocketAddr],
        packet: &[u8],
        from: SocketAddr,
    ) {
        let Ok(query) = Message::from_vec(packet) else {
            return;
        };
        if let Some(reply) = self.local_answer(container, &query) {
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, from);
            }
            return;
        }
        let socket = socket.clone();
        let upstream = upstream.to_vec();
        let packet = packet.to_vec();
        std::thread::spawn(move || {
            let reply = relay(&packet, &upstream).or_else(|| {
                let mut fail = Message::response(query.metadata.id, query.metadata.op_code);
                fail.metadata.response_code = ResponseCode::ServFail;
                fail.add_queries(query.queries.clone());
                fail.to_vec().ok()
            });
            if let Some(r) = reply {
                let _ = socket.send_to(&r, from);
            }
        });
    }

    /// One TCP connection: length-prefixed queries answered in turn until the client
    /// closes it or stays idle for 10 s (RFC 7766).
    fn serve_tcp(&self, container: &str, mut conn: TcpStream, upstream: &[SocketAddr]) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
        loop {
            let Some(packet) = read_framed(&mut conn) else {
                return;
            };
            let Ok(query) = Message::from_vec(&packet) else {
                return;
            };
            let reply = match self.local_answer(container, &query) {
                Some(r) => r.to_vec().ok(),
                None => relay_tcp(&packet, upstream),
            };
            let reply = reply.or_else(|| {
                let mut fail = Message::response(query.metadata.id, query.metadata.op_code);
                fail.metadata.response_code = ResponseCode::ServFail;
                fail.add_queries(query.queries.clone());
                fail.to_vec().ok()
            });
            match reply {
                Some(r) if write_framed(&mut conn, &r).is_ok() => {}
                _ => return,
            }
        }
    }

    fn local_answer(&self, container: &str, query: &Message) -> Option<Message> {
        let q = query.queries.first()?;
        let name = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ips = (self.lookup)(container, &name);
        if ips.is_empty() {
            return None;
        }
        let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
        reply.metadata.message_type = MessageType::Response;
        reply.metadata.recursion_desired = query.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.add_queries(query.queries.clone());
        // A and AAAA from the endpoints; other types get an empty NOERROR answer.
        let owner: Name = q.name().clone();
        let any = q.query_type() == RecordType::ANY;
        for ip in ips {
            let data = match ip {
                std::net::IpAddr::V4(v4) if any || q.query_type() == RecordType::A => {
                    RData::A(A(v4))
                }
                std::net::IpAddr::V6(v6) if any || q.query_type() == RecordType::AAAA => {
                    RData::AAAA(AAAA(v6))
                }
                _ => continue,
            };
            reply.add_answer(Record::from_rdata(owner.clone(), TTL, data));
        }
        Some(reply)
    }
}

/// Sends `packet` to each upstream server in turn until one answers.
fn relay(packet: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let local: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(s) = UdpSocket::bind(local) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.send_to(packet, server).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

/// One DNS message with its two-byte length in front, as DNS over TCP sends them.
fn read_framed(conn: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    conn.read_exact(&mut len).ok()?;
    let mut packet = vec![0u8; u16::from_be_bytes(len) as usize];
    conn.read_exact(&mut packet).ok()?;
    Some(packet)
}

fn write_framed(conn: &mut impl Write, packet: &[u8]) -> io::Result<()> {
    let len = u16::try_from(packet.len()).map_err(io::Error::other)?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(packet);
    conn.write_all(&out)
}

/// Sends `packet` over TCP to each upstream server in turn until one answers.
fn relay_tcp(packet: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let Ok(mut s) = TcpStream::connect_timeout(server, Duration::from_secs(5)) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if write_framed(&mut s, packet).is_err() {
            continue;
        }
        if let Some(reply) = read_framed(&mut s) {
            return Some(reply);
        }
    }
    None
}

/// The name servers of a resolv.conf text, on port 53.
pub fn servers_of(resolv: &str) -> Vec<SocketAddr> {
    resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}
