//! Networking with real traffic: the default bridge, published ports reached from the
//! host and from other containers, `-P`, `port`, `--network none|host|container:`, the
//! /etc files, port conflicts, and what is left after stops and crashes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// A TCP port nothing on the host listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / over plain TCP from the host; the body, or the error.
fn http_get(addr: &str) -> Result<String, String> {
    let mut last = String::new();
    // The server in the container may take a moment to listen.
    for _ in 0..50 {
        match TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
                let mut raw = String::new();
                let _ = s.read_to_string(&mut raw);
                if let Some((_, body)) = raw.split_once("\r\n\r\n") {
                    return Ok(body.to_string());
                }
                last = format!("no HTTP answer: {raw:?}");
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(last)
}

/// The host's own address on its default route (what other hosts would connect to).
fn host_address() -> String {
    let o = std::process::Command::new("ip")
        .args(["-4", "route", "get", "1.1.1.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next().unwrap().to_string();
        }
    }
    panic!("no source address in {text:?}")
}

/// Serves `body` with busybox httpd on port 80 of a new detached container.
fn web_server(d: &Daemon, name: &str, body: &str, publish: &[&str]) -> String {
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(publish);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    docker_ok(d, &args)
}

/// Whether Berth's table publishes host port `port` (an element of its port maps).
fn publishes(d: &Daemon, port: u16) -> bool {
    nft_table(d).contains(&format!(" . {port} : "))
}

fn nft_table(d: &Daemon) -> String {
    let o = std::process::Command::new("nft")
        .args(["list", "table", "ip", &format!("berth_{}", d.bridge)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn published_port_answers_host_loopback_host_address_and_other_containers() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let port = free_port();
    let publish = format!("{port}:80");
    web_server(&d, "web", "hello-berth", &["-p", &publish]);
    assert_eq!(
        http_get(&format!("127.0.0.1:{port}")).unwrap().trim(),
        "hello-berth"
    );
    let host = host_address();
    assert_eq!(
        http_get(&format!("{host}:{port}")).unwrap().trim(),
        "hello-berth"
    );
    // Another container: through the host's address (hairpin NAT) and directly.
    let ip = docker_ok(
        &d,
        &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"],
    );
    let via_host = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "wget",
            "-qO-",
            &format!("http://{host}:{port}/"),
        ],
    );
    assert_eq!(via_host, "hello-berth");
    let direct = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "wget",
            "-qO-",
            &format!("http://{ip}/"),
        ],
    );
    assert_eq!(direct, "hello-berth");
    // `port`, `ps` and inspect say where it is.
    assert_eq!(
        docker_ok(&d, &["port", "web"]),
        format!("80/tcp -> 0.0.0.0:{port}")
    );
    assert_eq!(
        docker_ok(&d, &["port", "web", "80"]),
        format!("0.0.0.0:{port}")
    );
    let ports = docker_ok(&d, &["ps", "--format", "{{.Ports}}", "-f", "name=web"]);
    assert_eq!(ports, format!("0.0.0.0:{port}->80/tcp"));
    let same = docker_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.bridge.IPAddress}}",
            "web",
        ],
    );
    assert_eq!(same, ip);
    let inside = docker_ok(
        &d,
        &["exec", "web", "ip", "-4", "-o", "addr", "show", "eth0"],
    );
    assert!(inside.contains(&format!("inet {ip}/")), "{inside}");
    assert!(publishes(&d, port), "{}", nft_table(&d));
    // Removed: the rule, the veth and the port go.
    docker_ok(&d, &["rm", "-f", "web"]);
    assert!(!publishes(&d, port), "{}", nft_table(&d));
    assert!(std::net::TcpListener::bind(("0.0.0.0", port)).is_ok());
    assert!(http_get(&format!("127.0.0.1:{port}")).is_err());
    assert_clean(&d);
}

#[test]
fn publish_all_maps_exposed_ports_to_ephemeral_host_ports() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    web_server(
        &d,
        "web",
        "ephemeral",
        &["-P", "--expose", "80", "--expose", "9999/udp"],
    );
    let mapped = docker_ok(&d, &["port", "web", "80/tcp"]);
    let host_port: u16 = mapped.rsplit(':').next().unwrap().parse().unwrap();
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let bounds: Vec<u16> = range
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(
        (bounds[0]..=bounds[1]).contains(&host_port),
        "{host_port} outside {range}"
    );
    assert!(docker_ok(&d, &["port", "web", "9999/udp"]).starts_with("0.0.0.0:"));
    assert_eq!(
        http_get(&format!("127.0.0.1:{host_port}")).unwrap().trim(),
        "ephemeral"
    );
    docker_ok(&d, &["rm", "-f", "web"]);
    assert_clean(&d);
}

#[test]
fn a_taken_port_is_refused_and_stopping_frees_it() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let port = free_port();
    let publish = format!("{port}:80");
    web_server(&d, "one", "first", &["-p", &publish]);
    let o = docker(
        &d,
        &[
            "run", "-d", "--name", "two", "-p", &publish, "busybox", "sleep", "10",
        ],
    )
    .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("port is already allocated"), "{}", err(&o));
    // The failed start left no namespace or veth.
    assert_eq!(bridge_ports(&d.bridge).len(), 1);
    let netns = std::fs::read_dir(d.dir.path().join("exec/netns"))
        .unwrap()
        .count();
    assert_eq!(netns, 1);
    // A port a host process listens on is refused too.
    let busy = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "-p",
            &format!("{busy_port}:80"),
            "busybox",
            "sleep",
            "0",
        ],
    )
    .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", err(&o));
    drop(busy);
    // `stop` returns with the port free: the next run takes it at once.
    docker_ok(&d, &["stop", "-t", "1", "one"]);
    docker_ok(&d, &["rm", "two"]);
    web_server(&d, "two", "second", &["-p", &publish]);
    assert_eq!(
        http_get(&format!("127.0.0.1:{port}")).unwrap().trim(),
        "second"
    );
    docker_ok(&d, &["rm", "-f", "one", "two"]);
    assert_clean(&d);
}

#[test]
fn none_host_and_container_modes() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let none = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ls",
            "/sys/class/net",
        ],
    );
    assert_eq!(none, "lo");
    let host_links = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ls",
            "/sys/class/net",
        ],
    );
    assert!(
        host_links.split_whitespace().any(|l| l == d.bridge),
        "{host_links}"
    );
    let host_name = docker_ok(
        &d,
        &["run", "--rm", "--network", "host", "busybox", "hostname"],
    );
    assert_eq!(
        host_name,
        rustix::system::uname().nodename().to_string_lossy()
    );
    docker_ok(
        &d,
        &["run", "-d", "--name", "holder", "busybox", "sleep", "60"],
    );
    let ip = docker_ok(
        &d,
        &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "holder"],
    );
    let joined = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "container:holder",
            "busybox",
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert!(joined.contains(&format!("inet {ip}/")), "{joined}");
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "container:holder",
            "-p",
            "80:80",
            "busybox",
            "sleep",
            "0",
        ],
    )
    .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("conflicting options"), "{}", err(&o));
    docker_ok(&d, &["rm", "-f", "holder"]);
    assert_clean(&d);
}

#[test]
fn etc_files_carry_address_extra_hosts_and_dns_settings() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--hostname",
            "box",
            "--add-host",
            "db:10.9.8.7",
            "--add-host",
            "gw:host-gateway",
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "example.test",
            "--mac-address",
            "02:42:0a:0b:0c:0d",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; ip -4 -o addr show eth0",
        ],
    );
    let mut parts = out.split("---\n");
    let (hosts, resolv, addr) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let ip = addr
        .split_whitespace()
        .nth(3)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    assert!(hosts.contains(&format!("{ip}\tbox\n")), "{hosts}");
    let mac = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--mac-address",
            "02:42:0a:0b:0c:0e",
            "busybox",
            "cat",
            "/sys/class/net/eth0/address",
        ],
    );
    assert_eq!(mac, "02:42:0a:0b:0c:0e");
    assert!(hosts.contains("10.9.8.7\tdb\n"), "{hosts}");
    let gw = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", &d.bridge])
        .output()
        .unwrap();
    let gw = String::from_utf8_lossy(&gw.stdout)
        .split_whitespace()
        .nth(3)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(hosts.contains(&format!("{gw}\tgw\n")), "{hosts}");
    assert_eq!(resolv, "search example.test\nnameserver 192.0.2.53\n");
    // Without --dns: the host's servers minus loopback ones.
    let resolv = docker_ok(&d, &["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(!resolv.contains("nameserver 127."), "{resolv}");
    assert!(resolv.contains("nameserver"), "{resolv}");
    assert_clean(&d);
}

#[test]
fn bad_network_input_is_refused_before_anything_is_made() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "nosuch",
            "busybox",
            "sleep",
            "0",
        ],
    )
    .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("network nosuch not found"), "{}", err(&o));
    assert!(!err(&o).contains("Unable to find image"), "{}", err(&o));
    // Berth's own `run` looks before it creates: no container is left, even without --rm.
    let o = berth(&d, &["run", "--network", "nosuch", "busybox", "true"], None);
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("network nosuch not found"), "{}", err(&o));
    assert_eq!(docker_ok(&d, &["ps", "-aq"]), "");
    for (host_config, needle) in [
        (r#"{"ExtraHosts": ["oops"]}"#, "invalid add-host"),
        (r#"{"ExtraHosts": ["db:not-an-ip"]}"#, "invalid IP address"),
        (
            r#"{"PortBindings": {"80/tcp": [{"HostPort": "70000"}]}}"#,
            "invalid hostPort",
        ),
        (
            r#"{"PortBindings": {"eighty/tcp": []}}"#,
            "invalid containerPort",
        ),
        (
            r#"{"PortBindings": {"80/tcp": [{"HostIp": "nowhere", "HostPort": "80"}]}}"#,
            "invalid IP address",
        ),
    ] {
        let body = format!(r#"{{"Image": "busybox", "HostConfig": {host_config}}}"#);
        let (status, text) = d.post_json("/containers/create", &body);
        assert_eq!(status, 400, "{host_config}: {text}");
        assert!(text.contains(needle), "{host_config}: {text}");
    }
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--ip",
            "172.17.0.50",
            "busybox",
            "sleep",
            "0",
        ],
    )
    .unwrap();
    assert!(
        err(&o).contains("user specified IP address is supported on user defined networks only"),
        "{}",
        err(&o)
    );
    assert_eq!(docker_ok(&d, &["ps", "-aq"]), "");
    assert_clean(&d);
}

/// docker-compose v1 creates a service's container before the project's network; dockerd
/// accepts that and says so at start.
#[test]
fn a_container_may_be_created_before_its_network() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let (status, text) = d.post_json(
        "/containers/create?name=early",
        r#"{"Image": "busybox", "Cmd": ["sleep", "60"], "HostConfig": {"NetworkMode": "later"}}"#,
    );
    assert_eq!(status, 201, "{text}");
    let (status, text) = d.post_json("/containers/early/start", "");
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("network later not found"), "{text}");
    let state = docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "early"]);
    assert_eq!(state, "created");
    docker_ok(&d, &["network", "create", "later"]);
    docker_ok(&d, &["start", "early"]);
    assert!(!ip_in(&d, "early", "later").is_empty());
    docker_ok(&d, &["rm", "-f", "early"]);
    docker_ok(&d, &["network", "rm", "later"]);
    assert_clean(&d);
}

#[test]
fn a_crash_leaves_no_rule_veth_or_namespace_and_a_lost_bridge_comes_back() {
    let Some(mut d) = daemon_with_busybox() else {
        return;
    };
    let port = free_port();
    let publish = format!("{port}:80");
    web_server(&d, "web", "before", &["-p", &publish]);
    let pid: i32 = docker_ok(&d, &["inspect", "-f", "{{.State.Pid}}", "web"])
        .parse()
        .unwrap();
    assert!(publishes(&d, port), "{}", nft_table(&d));
    // berthd dies; the container dies while it is away; the bridge goes (a reboot).
    d.crash_then(|d| {
        // SAFETY: kill(2) on the container process this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &d.bridge])
            .status();
    });
    let status = docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "web"]);
    assert_eq!(status, "exited");
    assert!(!publishes(&d, port), "{}", nft_table(&d));
    assert_eq!(
        std::fs::read_dir(d.dir.path().join("exec/netns"))
            .unwrap()
            .count(),
        0
    );
    // The bridge is back and the port is free for the next container.
    web_server(&d, "again", "after", &["-p", &publish]);
    assert_eq!(
        http_get(&format!("127.0.0.1:{port}")).unwrap().trim(),
        "after"
    );
    docker_ok(&d, &["rm", "-f", "web", "again"]);
    assert_clean(&d);
}

/// Whether `ip` answers one ping from inside container `from`.
fn pings(d: &Daemon, from: &str, ip: &str) -> bool {
    docker(d, &["exec", from, "ping", "-c", "1", "-W", "1", ip])
        .unwrap()
        .status
        .success()
}

fn ip_in(d: &Daemon, container: &str, network: &str) -> String {
    let f = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    docker_ok(d, &["inspect", "-f", &f, container])
}

#[test]
fn user_networks_connect_isolate_and_go_away() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let id = docker_ok(
        &d,
        &[
            "network",
            "create",
            "--subnet",
            "10.231.7.0/24",
            "--ip-range",
            "10.231.7.128/25",
            "--label",
            "team=a",
            "front",
        ],
    );
    docker_ok(&d, &["network", "create", "back"]);
    let ls = docker_ok(&d, &["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in [
        "bridge bridge",
        "host host",
        "none null",
        "front bridge",
        "back bridge",
    ] {
        assert!(ls.lines().any(|l| l == want), "{want} missing in {ls}");
    }
    let labelled = docker_ok(
        &d,
        &["network", "ls", "-q", "--no-trunc", "-f", "label=team=a"],
    );
    assert_eq!(labelled, id);
    let subnet = docker_ok(
        &d,
        &[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}",
            "front",
        ],
    );
    assert_eq!(subnet, "10.231.7.0/24 10.231.7.1");
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "f1",
            "--network",
            "front",
            "busybox",
            "sleep",
            "60",
        ],
    );
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "f2",
            "--network",
            "front",
            "--ip",
            "10.231.7.200",
            "busybox",
            "sleep",
            "60",
        ],
    );
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "b1",
            "--network",
            "back",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let f1 = ip_in(&d, "f1", "front");
    assert_eq!(f1, "10.231.7.128", "addresses come from the ip-range");
    assert_eq!(ip_in(&d, "f2", "front"), "10.231.7.200");
    assert!(pings(&d, "f2", &f1));
    // Different networks cannot reach each other...
    assert!(!pings(&d, "b1", &f1));
    // ... until one is connected to the other's network, live.
    docker_ok(
        &d,
        &["network", "connect", "--alias", "extra", "front", "b1"],
    );
    let b1_front = ip_in(&d, "b1", "front");
    assert!(b1_front.starts_with("10.231.7."), "{b1_front}");
    assert!(pings(&d, "b1", &f1));
    let members = docker_ok(
        &d,
        &[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            "front",
        ],
    );
    let mut names: Vec<&str> = members.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["b1", "f1", "f2"]);
    // In use: not removable.
    let o = docker(&d, &["network", "rm", "front"]).unwrap();
    assert!(!o.status.success());
    assert!(err(&o).contains("has active endpoints"), "{}", err(&o));
    docker_ok(&d, &["network", "disconnect", "front", "b1"]);
    assert!(!pings(&d, "b1", &f1));
    let links = docker_ok(&d, &["exec", "b1", "ls", "/sys/class/net"]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["eth0", "lo"]);
    docker_ok(&d, &["rm", "-f", "f1", "f2", "b1"]);
    let bridges = d.user_bridges();
    assert_eq!(bridges.len(), 2);
    docker_ok(&d, &["network", "rm", "front"]);
    // prune takes the unused rest; the predefined ones stay.
    let pruned = docker_ok(&d, &["network", "prune", "-f"]);
    assert!(pruned.contains("back"), "{pruned}");
    let ls = docker_ok(&d, &["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls.lines().count(), 3, "{ls}");
    for b in bridges {
        assert!(
            !std::path::Path::new(&format!("/sys/class/net/{b}")).exists(),
            "{b} left"
        );
    }
    assert_clean(&d);
}

#[test]
fn an_internal_network_has_no_way_out() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    docker_ok(&d, &["network", "create", "--internal", "sealed"]);
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "s1",
            "--network",
            "sealed",
            "busybox",
            "sleep",
            "60",
        ],
    );
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "s2",
            "--network",
            "sealed",
            "busybox",
            "sleep",
            "60",
        ],
    );
    assert!(pings(&d, "s2", &ip_in(&d, "s1", "sealed")));
    let routes = docker_ok(&d, &["exec", "s1", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    // Not even the host's address behind the gateway.
    assert!(!pings(&d, "s1", &host_address()));
    docker_ok(&d, &["rm", "-f", "s1", "s2"]);
    docker_ok(&d, &["network", "rm", "sealed"]);
    assert_clean(&d);
}

#[test]
fn bad_network_requests_are_refused() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    docker_ok(
        &d,
        &["network", "create", "--subnet", "10.232.0.0/16", "taken"],
    );
    for (args, needle) in [
        (vec!["network", "create", "taken"], "already exists"),
        (vec!["network", "create", "bridge"], "pre-defined"),
        (
            vec!["network", "create", "--subnet", "10.232.5.0/24", "overlap"],
            "overlaps",
        ),
        (
            vec!["network", "create", "--subnet", "10.233.0.0/33", "bad"],
            "invalid CIDR",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.234.0.0/24",
                "--gateway",
                "10.9.9.9",
                "gw",
            ],
            "gateway",
        ),
        (vec!["network", "create", "-d", "overlay", "ov"], "plugin"),
        (vec!["network", "rm", "host"], "pre-defined"),
        (vec!["network", "rm", "nosuch"], "not found"),
        (vec!["network", "inspect", "nosuch"], "not found"),
    ] {
        let o = docker(&d, &args).unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err(&o).contains(needle), "{args:?}: {}", err(&o));
    }
    let ls = docker_ok(&d, &["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(
        ls.lines().count(),
        4,
        "only the predefined ones and 'taken': {ls}"
    );
    docker_ok(&d, &["network", "rm", "taken"]);
    assert_clean(&d);
}

/// The address `name` resolves to inside `from`, through the embedded DNS.
fn resolve(d: &Daemon, from: &str, name: &str) -> Option<String> {
    let o = docker(d, &["exec", from, "nslookup", name]).unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    // busybox prints the server first, then "Name: ..." and "Address: ..." of the answer.
    let answer = text.split_once(&format!("Name:\t{name}"))?.1.to_string();
    answer
        .lines()
        .find_map(|l| l.strip_prefix("Address: "))
        .map(|a| a.trim().to_string())
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name_alias_and_id() {
    let Some(mut d) = daemon_with_busybox() else {
        return;
    };
    docker_ok(&d, &["network", "create", "app"]);
    docker_ok(&d, &["network", "create", "elsewhere"]);
    let db_id = docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "db",
            "--network",
            "app",
            "--network-alias",
            "database",
            "busybox",
            "sleep",
            "60",
        ],
    );
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "app",
            "busybox",
            "sleep",
            "60",
        ],
    );
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "far",
            "--network",
            "elsewhere",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let db_ip = ip_in(&d, "db", "app");
    let resolv = docker_ok(&d, &["exec", "web", "cat", "/etc/resolv.conf"]);
    assert!(resolv.starts_with("nameserver 127.0.0.11\n"), "{resolv}");
    assert_eq!(resolve(&d, "web", "db").as_deref(), Some(db_ip.as_str()));
    assert_eq!(
        resolve(&d, "web", "database").as_deref(),
        Some(db_ip.as_str())
    );
    assert_eq!(
        resolve(&d, "web", &db_id[..12]).as_deref(),
        Some(db_ip.as_str())
    );
    assert!(pings(&d, "web", "db"));
    // Not from another network.
    assert_eq!(resolve(&d, "far", "db"), None);
    let names = docker_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{json (index .NetworkSettings.Networks \"app\").DNSNames}}",
            "db",
        ],
    );
    assert_eq!(names, format!("[\"db\",\"{}\",\"database\"]", &db_id[..12]));
    // berthd restarts: the running containers' resolvers come back.
    d.crash_and_restart();
    assert_eq!(resolve(&d, "web", "db").as_deref(), Some(db_ip.as_str()));
    // The default bridge has no embedded DNS, as in Docker.
    let plain = docker_ok(&d, &["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(!plain.contains("127.0.0.11"), "{plain}");
    docker_ok(&d, &["rm", "-f", "db", "web", "far"]);
    docker_ok(&d, &["network", "rm", "app", "elsewhere"]);
    assert_clean(&d);
}

#[test]
fn links_give_hosts_entries_and_docker_s_variables() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "db",
            "-e",
            "SECRET=s3",
            "--expose",
            "5432",
            "--expose",
            "53/udp",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let ip = docker_ok(
        &d,
        &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"],
    );
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--name",
            "web",
            "--link",
            "db:database",
            "busybox",
            "sh",
            "-c",
            "env | grep ^DATABASE_ | sort; grep database /etc/hosts; ping -c1 -W1 database >/dev/null && echo reached",
        ],
    );
    let want = [
        "DATABASE_ENV_SECRET=s3".to_string(),
        "DATABASE_NAME=/web/database".to_string(),
        format!("DATABASE_PORT=udp://{ip}:53"),
        format!("DATABASE_PORT_53_UDP=udp://{ip}:53"),
        format!("DATABASE_PORT_53_UDP_ADDR={ip}"),
        "DATABASE_PORT_53_UDP_PORT=53".to_string(),
        "DATABASE_PORT_53_UDP_PROTO=udp".to_string(),
        format!("DATABASE_PORT_5432_TCP=tcp://{ip}:5432"),
        format!("DATABASE_PORT_5432_TCP_ADDR={ip}"),
        "DATABASE_PORT_5432_TCP_PORT=5432".to_string(),
        "DATABASE_PORT_5432_TCP_PROTO=tcp".to_string(),
        format!("{ip}\tdatabase db"),
        "reached".to_string(),
    ];
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        want.iter().map(String::as_str).collect::<Vec<_>>()
    );
    docker_ok(
        &d,
        &[
            "create",
            "--name",
            "linker",
            "--link",
            "db:database",
            "busybox",
            "sleep",
            "1",
        ],
    );
    let shown = docker_ok(
        &d,
        &["inspect", "-f", "{{json .HostConfig.Links}}", "linker"],
    );
    assert_eq!(shown, r#"["/db:/linker/database"]"#);
    // A stopped target cannot be linked to; a missing one is refused at create.
    docker_ok(&d, &["stop", "-t", "0", "db"]);
    let o = docker(&d, &["start", "linker"]).unwrap();
    assert!(
        err(&o).contains("Cannot link to a non running container: /db AS /linker/database"),
        "{}",
        err(&o)
    );
    let o = docker(&d, &["create", "--link", "nosuch:x", "busybox"]).unwrap();
    assert!(
        err(&o).contains("could not get container for nosuch"),
        "{}",
        err(&o)
    );
    // A link goes by linker/alias, with berth as with docker (tests/containers.rs).
    let o = berth(&d, &["rm", "-l", "linker/database"], None);
    assert!(o.status.success(), "{}", err(&o));
    let links = docker_ok(
        &d,
        &["inspect", "-f", "{{json .HostConfig.Links}}", "linker"],
    );
    assert_eq!(links, "[]");
    docker_ok(&d, &["rm", "-f", "db", "linker"]);
    assert_clean(&d);
}

/// A second "host" for the tests: a network namespace joined to this host by a veth
/// (`10.250.<n>.1` here, `.2` there), with no route to container subnets, so that only
/// NAT lets containers talk to it. Removed (with whatever it runs) on drop.
struct OtherHost {
    ns: String,
    near: String,
    far_ip: String,
    near_ip: String,
    children: Vec<std::process::Child>,
}

impl OtherHost {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}{n}", std::process::id() % 100_000);
        let octet = (std::process::id() % 200 + n) % 250;
        let h = OtherHost {
            ns: format!("bto{id}"),
            near: format!("btoh{id}"),
            far_ip: format!("10.250.{octet}.2"),
            near_ip: format!("10.250.{octet}.1"),
            children: Vec::new(),
        };
        let far = format!("btof{id}");
        let ip = |args: &[&str]| {
            let ok = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap()
                .success();
            assert!(ok, "ip {args:?}");
        };
        ip(&["netns", "add", &h.ns]);
        ip(&[
            "link", "add", &h.near, "type", "veth", "peer", "name", &far, "netns", &h.ns,
        ]);
        ip(&["addr", "add", &format!("{}/30", h.near_ip), "dev", &h.near]);
        ip(&["link", "set", &h.near, "up"]);
        ip(&[
            "-n",
            &h.ns,
            "addr",
            "add",
            &format!("{}/30", h.far_ip),
            "dev",
            &far,
        ]);
        ip(&["-n", &h.ns, "link", "set", &far, "up"]);
        ip(&["-n", &h.ns, "link", "set", "lo", "up"]);
        h
    }

    /// GET / from `ip:port`, from inside the other host (busybox nc: busybox's wget
    /// crashes in glibc's NSS when run on a full host); the body, if any answer came.
    fn get(&self, ip: &str, port: u16) -> Option<String> {
        use std::io::Write as _;
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns, "busybox", "nc", "-w", "2", ip])
            .arg(port.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"GET / HTTP/1.0\r\n\r\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.trim().to_string())
    }

    /// Serves `body` over HTTP on port 8000 of the other host.
    fn serve(&mut self, dir: &std::path::Path, body: &str) {
        std::fs::write(dir.join("index.html"), body).unwrap();
        let child = std::process::Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "busybox", "httpd", "-f", "-p", "8000", "-h",
            ])
            .arg(dir)
            .spawn()
            .unwrap();
        self.children.push(child);
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.near])
            .status();
    }
}

#[test]
fn other_hosts_reach_published_ports_containers_reach_them_through_nat_and_host_rules_hold() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    let had_run_netns = std::path::Path::new("/run/netns").exists();
    {
        let mut other = OtherHost::new();
        let port = free_port();
        web_server(
            &d,
            "web",
            "from-a-container",
            &["-p", &format!("{port}:80")],
        );
        // Another host reaches the published port on this host's address.
        let mut got = None;
        for _ in 0..50 {
            got = other.get(&other.near_ip, port);
            if got.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(got.as_deref(), Some("from-a-container"));
        // Outbound: the other host has no route to the container's subnet, so only the
        // masquerade lets the answer come back.
        let www = d.dir.path().join("other-www");
        std::fs::create_dir_all(&www).unwrap();
        other.serve(&www, "from-another-host");
        assert_eq!(
            other.get(&other.far_ip, 8000).as_deref(),
            Some("from-another-host")
        );
        let far = format!("http://{}:8000/", other.far_ip);
        // (busybox's wget crashes with -T, so no timeout flag here)
        let out = docker_ok(&d, &["run", "--rm", "busybox", "wget", "-qO-", &far]);
        assert_eq!(out, "from-another-host");
        // A host rule in the forward hook (where published traffic goes) holds: Berth
        // does not go around it.
        let table = format!("bt_hostfw_{}", std::process::id());
        let rules = format!(
            "table inet {table} {{\n chain hostforward {{\n type filter hook forward priority 0;\n meta l4proto tcp ct original proto-dst {port} drop\n }}\n}}\n"
        );
        let ok = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .map(|mut c| {
                use std::io::Write as _;
                c.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
                c.wait().unwrap().success()
            });
        assert!(ok.unwrap());
        let blocked = other.get(&other.near_ip, port);
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", &table])
            .status();
        assert_eq!(blocked, None, "the host's drop rule was bypassed");
        assert_eq!(
            other.get(&other.near_ip, port).as_deref(),
            Some("from-a-container")
        );
        docker_ok(&d, &["rm", "-f", "web"]);
    }
    if !had_run_netns {
        // `ip netns add` made /run/netns a mount of itself: undo that too.
        let _ = rustix::mount::unmount("/run/netns", rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_dir("/run/netns");
    }
    assert_clean(&d);
}

#[test]
fn ipam_options_are_kept_and_shown() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    for cli in [CliKind::Docker, CliKind::Berth] {
        let name = format!("{cli:?}-ipam").to_lowercase();
        cli_ok(
            &d,
            cli,
            &["network", "create", "--ipam-opt", "com.example.k=v", &name],
        );
        let shown = cli_ok(
            &d,
            cli,
            &["network", "inspect", "-f", "{{json .IPAM.Options}}", &name],
        );
        assert_eq!(shown, r#"{"com.example.k":"v"}"#);
        cli_ok(&d, cli, &["network", "rm", &name]);
    }
}

/// A DNS query over TCP (RFC 7766 framing) from inside the namespace of `pid`.
fn dns_over_tcp(pid: i32, name: &str) -> Vec<u8> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let name = name.to_string();
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns(2) on this short-lived thread only, with a namespace file we hold.
        let joined = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(joined, 0);
        let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 1, 0, 1]);
        let mut s = TcpStream::connect(("127.0.0.11", 53)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        s.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut reply).unwrap();
        reply
    })
    .join()
    .unwrap()
}

#[test]
fn the_embedded_dns_answers_over_tcp_too() {
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    docker_ok(&d, &["network", "create", "tcpdns"]);
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "tcpdns",
            "busybox",
            "sleep",
            "60",
        ],
    );
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "asker",
            "--network",
            "tcpdns",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let ip: std::net::Ipv4Addr = docker_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.tcpdns.IPAddress}}",
            "web",
        ],
    )
    .parse()
    .unwrap();
    let pid: i32 = docker_ok(&d, &["inspect", "-f", "{{.State.Pid}}", "asker"])
        .parse()
        .unwrap();
    let reply = dns_over_tcp(pid, "web");
    assert_eq!(&reply[..2], &[0x12, 0x34], "the query's id");
    assert_eq!(reply[3] & 0x0f, 0, "NOERROR");
    assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 1, "one answer");
    assert!(
        reply.ends_with(&ip.octets()),
        "{reply:?} should end with {ip}"
    );
    docker_ok(&d, &["rm", "-f", "web", "asker"]);
    docker_ok(&d, &["network", "rm", "tcpdns"]);
    assert_clean(&d);
}

fn nft_has_table(name: &str) -> bool {
    std::process::Command::new("nft")
        .args(["list", "table", "ip", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn iptables_rules(table: &str, chain: &str) -> String {
    let o = std::process::Command::new("iptables")
        .args(["-t", table, "-S", chain])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn where_nft_is_missing_the_rules_go_to_iptables() {
    if std::process::Command::new("iptables-restore")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: iptables is not installed");
        return;
    }
    // iptables (here the nft-based one) makes the nat and filter tables on first use:
    // tables this test made go again at its end.
    let (nat_before, filter_before) = (nft_has_table("nat"), nft_has_table("filter"));
    {
        let d = Daemon::start_with(&["--firewall-backend", "iptables"]);
        import_image(
            &d,
            "busybox",
            &["sh", "httpd", "echo", "mkdir", "wget"],
            |_| {},
            &[r#"CMD ["sh"]"#],
        )
        .unwrap();
        let chain = format!("BERTH_{}", d.bridge.to_uppercase());
        let port = free_port();
        web_server(&d, "web", "hello-iptables", &["-p", &format!("{port}:80")]);
        assert_eq!(
            http_get(&format!("127.0.0.1:{port}")).unwrap().trim(),
            "hello-iptables"
        );
        assert_eq!(
            http_get(&format!("{}:{port}", host_address()))
                .unwrap()
                .trim(),
            "hello-iptables"
        );
        let published = iptables_rules("nat", &format!("{chain}-PUB"));
        assert!(
            published.contains(&format!("--dport {port} -j DNAT")),
            "{published}"
        );
        assert!(iptables_rules("nat", "PREROUTING").contains(&format!("-j {chain}-PRE")));
        assert!(
            !nft_has_table(&format!("berth_{}", d.bridge)),
            "no nftables table"
        );
        docker_ok(&d, &["rm", "-f", "web"]);
        let published = iptables_rules("nat", &format!("{chain}-PUB"));
        assert!(!published.contains("DNAT"), "{published}");
        assert_clean(&d);
    }
    // The daemon's leftovers (its chains and jumps) went with it.
    for (table, builtin) in [
        ("nat", "PREROUTING"),
        ("nat", "POSTROUTING"),
        ("filter", "FORWARD"),
    ] {
        assert!(
            !iptables_rules(table, builtin).contains("BERTH_BT"),
            "{table} {builtin}"
        );
    }
    for (table, before) in [("nat", nat_before), ("filter", filter_before)] {
        if !before {
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "ip", table])
                .status();
        }
    }
}

#[test]
fn ipv6_networks_give_containers_addresses_that_reach_each_other() {
    if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
        eprintln!("skipped: no IPv6 on this host");
        return;
    }
    let Some(d) = daemon_with_busybox() else {
        return;
    };
    for cli in [CliKind::Docker, CliKind::Berth] {
        let net = format!("{cli:?}-v6").to_lowercase();
        let (subnet, fixed) = match cli {
            CliKind::Docker => ("2001:db8:42::/64", "2001:db8:42::100"),
            CliKind::Berth => ("2001:db8:43::/64", "2001:db8:43::100"),
        };
        cli_ok(
            &d,
            cli,
            &["network", "create", "--ipv6", "--subnet", subnet, &net],
        );
        let ipam = cli_ok(
            &d,
            cli,
            &[
                "network",
                "inspect",
                "-f",
                "{{.EnableIPv6}} {{json .IPAM.Config}}",
                &net,
            ],
        );
        assert!(ipam.starts_with("true "), "{ipam}");
        assert!(
            ipam.contains(subnet) && ipam.contains(&subnet.replace("/64", "1")),
            "{ipam}"
        );
        let a = format!("{net}-a");
        let b = format!("{net}-b");
        cli_ok(
            &d,
            cli,
            &[
                "run",
                "-d",
                "--name",
                &a,
                "--network",
                &net,
                "busybox",
                "sleep",
                "60",
            ],
        );
        cli_ok(
            &d,
            cli,
            &[
                "run",
                "-d",
                "--name",
                &b,
                "--network",
                &net,
                "--ip6",
                fixed,
                "busybox",
                "sleep",
                "60",
            ],
        );
        let shown = cli_ok(
            &d,
            cli,
            &[
                "inspect",
                "-f",
                &format!(
                    "{{{{(index .NetworkSettings.Networks \"{net}\").GlobalIPv6Address}}}} {{{{(index .NetworkSettings.Networks \"{net}\").IPAMConfig.IPv6Address}}}}"
                ),
                &b,
            ],
        );
        assert_eq!(shown, format!("{fixed} {fixed}"));
        let inside = cli_ok(&d, cli, &["exec", &b, "ip", "-6", "addr", "show", "eth0"]);
        assert!(inside.contains(&format!("{fixed}/64")), "{inside}");
        // Real traffic between the two over IPv6.
        let ping = cli_ok(&d, cli, &["exec", &a, "ping", "-c", "1", "-W", "5", fixed]);
        assert!(ping.contains("1 packets received"), "{ping}");
        let hosts = cli_ok(&d, cli, &["exec", &b, "cat", "/etc/hosts"]);
        assert!(hosts.contains(&format!("{fixed}\t")), "{hosts}");
        let aaaa = cli_ok(&d, cli, &["exec", &a, "nslookup", "-type=AAAA", &b]);
        assert!(aaaa.contains(fixed), "{aaaa}");
        let a6 = cli_ok(
            &d,
            cli,
            &[
                "inspect",
                "-f",
                &format!("{{{{(index .NetworkSettings.Networks \"{net}\").GlobalIPv6Address}}}}"),
                &a,
            ],
        );
        assert!(a6.starts_with(&subnet.replace("::/64", "::")), "{a6}");
        cli_ok(&d, cli, &["rm", "-f", &a, &b]);
        cli_ok(&d, cli, &["network", "rm", &net]);
    }
    // A fixed IPv6 address on a network without IPv6 is refused.
    let o = docker(
        &d,
        &[
            "run",
            "--rm",
            "--ip6",
            "2001:db8::5",
            "--network",
            "bridge",
            "busybox",
            "true",
        ],
    )
    .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert_clean(&d);
}

#[test]
fn with_ipv6_the_default_bridge_gives_containers_ipv6_addresses() {
    if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
        eprintln!("skipped: no IPv6 on this host");
        return;
    }
    let d = Daemon::start_with(&["--ipv6", "--fixed-cidr-v6", "2001:db8:44::/64"]);
    let applets = ["sh", "sleep", "cat", "ip", "ping"];
    if import_image(&d, "busybox", &applets, |_| {}, &[r#"CMD ["sh"]"#]).is_none() {
        return;
    }
    let ipam = docker_ok(
        &d,
        &[
            "network",
            "inspect",
            "-f",
            "{{.EnableIPv6}} {{json .IPAM.Config}}",
            "bridge",
        ],
    );
    assert!(ipam.starts_with("true "), "{ipam}");
    assert!(
        ipam.contains("2001:db8:44::/64") && ipam.contains("2001:db8:44::1"),
        "{ipam}"
    );
    for name in ["v6a", "v6b"] {
        docker_ok(&d, &["run", "-d", "--name", name, "busybox", "sleep", "60"]);
    }
    let b6 = docker_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{.NetworkSettings.GlobalIPv6Address}}",
            "v6b",
        ],
    );
    assert!(b6.starts_with("2001:db8:44::"), "{b6}");
    let ping = docker_ok(&d, &["exec", "v6a", "ping", "-c", "1", "-W", "5", &b6]);
    assert!(ping.contains("1 packets received"), "{ping}");
    let hosts = docker_ok(&d, &["exec", "v6b", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{b6}\t")), "{hosts}");
    docker_ok(&d, &["rm", "-f", "v6a", "v6b"]);
    assert_clean(&d);
}
