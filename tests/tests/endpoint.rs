//! Endpoint mode (`vpnfp run --local`) with real programs on a "laptop"
//! (a network namespace behind the lab's NAT router), in a cgroup this
//! test creates, and only there: openvpn, wireguard-go, `ssh -D`, curl
//! and a python client each get their flows attributed to their own pid
//! and executable; a short-lived curl too; a socket a forked child uses is
//! the child's; a policy blocks curl to one port while python reaching
//! the same server passes; a process outside the watched cgroup is no
//! one's; a container's flow forwarded through the laptop says it had no
//! socket; and vpnfp in router mode on the router beside it keeps its own
//! maps (its flows carry no process).

use std::{
    io::{BufRead, BufReader},
    net::Ipv4Addr,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use vpnfp_tests::{
    lab::ChildGuard,
    netns::NetNs,
    privileged,
    scratch::TempDir,
    vpnfp_bin, vpnfp_report,
    vpnlab::{
        procs::Procs,
        software::{OpenVpn, Pki, TlsCrypt, sshd, wg_keys, wg_name, wg_peer, wireguard},
        topology::{HOST_IF, ROUTER_IF, Topology},
        traffic::{Stop, http_server},
    },
};

const LAPTOP: Ipv4Addr = Ipv4Addr::new(192, 168, 90, 10);
const WEB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VPN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const SSH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 22);

/// The test's cgroups: `watched` (vpnfp's programs attach here, and this
/// test process moves in, so every program it starts is inside) and
/// `other` (beside it, not watched). Dropped last: the test moves back
/// home and removes them.
struct Cgroups {
    top: PathBuf,
    watched: PathBuf,
    other: PathBuf,
    home: PathBuf,
}

impl Cgroups {
    fn new() -> Self {
        let root = vpnfp::source::kernel::local::cgroup2_root()
            .expect("a cgroup v2 hierarchy is mounted (endpoint mode needs one)");
        let own = std::fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
        let own = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("a cgroup v2 entry in /proc/self/cgroup");
        let home = root.join(own.trim_start_matches('/'));
        let top = root.join(format!("vpnfp-endpoint-{}", std::process::id()));
        let (watched, other) = (top.join("watched"), top.join("other"));
        for dir in [&top, &watched, &other] {
            std::fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        let cgroups = Self {
            top,
            watched,
            other,
            home,
        };
        // "0": the writing process itself.
        std::fs::write(cgroups.watched.join("cgroup.procs"), "0").expect("moving into the cgroup");
        cgroups
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        let _ = std::fs::write(self.home.join("cgroup.procs"), "0");
        for dir in [&self.watched, &self.other, &self.top] {
            // The last processes may take a moment to leave.
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Starts vpnfp and waits until its programs are attached.
fn start_vpnfp(mut cmd: Command, what: &str) -> (ChildGuard, std::thread::JoinHandle<Vec<String>>) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let label = what.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[{label}] {line}");
            if line.contains("attached to") {
                let _ = tx.send(());
            }
        }
    });
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let mut guard = ChildGuard(Some(child));
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let status = guard.terminate(Duration::from_secs(5));
        panic!("{what} did not attach within 30 s ({status})");
    }
    (guard, lines)
}

/// curl in the laptop fetching `url` within `secs`: (pid, succeeded).
fn run_curl(
    topo: &Topology,
    url: &str,
    secs: u32,
    extra: &[&str],
    outside: Option<&Path>,
) -> (u32, bool) {
    let secs = secs.to_string();
    let mut args = vec!["curl", "-s", "-o", "/dev/null", "--max-time", &secs];
    args.extend_from_slice(extra);
    args.push(url);
    let (pid, ok, _) = client(topo, &args, outside);
    (pid, ok)
}

/// Runs a client in the laptop to its end; its pid and whether it
/// succeeded. `outside`: in the unwatched cgroup instead.
fn client(topo: &Topology, args: &[&str], outside: Option<&Path>) -> (u32, bool, String) {
    let laptop = &topo.host("laptop").ns;
    let mut cmd = laptop.command(args[0]);
    cmd.args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cgroup) = outside {
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(cgroup.join("cgroup.procs"))
            .expect("the other cgroup");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&procs);
        // SAFETY: only write(2) between fork and exec; the file stays open
        // in the parent until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let child = cmd.spawn().expect("starting a client");
        drop(procs);
        return finish(child);
    }
    finish(cmd.spawn().expect("starting a client"))
}

fn finish(child: std::process::Child) -> (u32, bool, String) {
    let pid = child.id();
    let out = child.wait_with_output().expect("a client's output");
    (
        pid,
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn events(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The flows to `peer:port` over `transport`.
fn flows<'a>(events: &'a [Value], peer: &str, port: u16, transport: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| {
            e["event"] == "flow"
                && e["peer"] == peer
                && e["peer_port"] == port
                && e["transport"] == transport
        })
        .collect()
}

/// Some flow to `peer:port` belongs to `pid` running `exe`.
fn assert_attributed(
    events: &[Value],
    peer: &str,
    port: u16,
    transport: &str,
    pid: u32,
    exe: &str,
) {
    let found = flows(events, peer, port, transport);
    assert!(
        found
            .iter()
            .any(|f| f["process"]["pid"] == pid && f["process"]["exe"] == exe),
        "no {transport} flow to {peer}:{port} attributed to pid {pid} ({exe}); flows: {found:#?}"
    );
}

fn wait(topo: &Topology, ping_to: &str, what: &str) {
    let laptop = &topo.host("laptop").ns;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ok = laptop
            .command("ping")
            .args(["-c", "1", "-W", "1", ping_to])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("{what}: {ping_to} not reachable through it within 30 s");
}

#[test]
fn every_flow_names_its_program_and_a_policy_blocks_one_program() {
    if !privileged("every_flow_names_its_program_and_a_policy_blocks_one_program") {
        return;
    }
    let cgroups = Cgroups::new();
    let dir = TempDir::new("endpoint");
    let topo = Topology::new(&[("laptop", LAPTOP)], &[WEB, VPN, SSH]);
    let laptop = &topo.host("laptop").ns;
    let procs = Procs::new(&dir);
    let stop = Stop::default();
    let web80 = http_server(&topo.wan, 80, stop.clone());
    let web8080 = http_server(&topo.wan, 8080, stop.clone());

    // The servers.
    let pki = Pki::new(&dir, &[VPN]).unwrap();
    let ovpn = OpenVpn {
        pki: &pki,
        proto: "udp",
        server: VPN,
        port: 1194,
        tls_crypt: TlsCrypt::None,
        tunnel: (Ipv4Addr::new(10, 102, 0, 1), Ipv4Addr::new(10, 102, 0, 2)),
    };
    ovpn.server(&procs, &topo.wan, "openvpn-server", "tun-ep-s")
        .unwrap();
    let (wg_server, wg_client) = (wg_name("es"), wg_name("ec"));
    let server_keys = wg_keys(&dir, "server").unwrap();
    let client_keys = wg_keys(&dir, "client").unwrap();
    wireguard(
        &procs,
        &topo.wan,
        "wg-server",
        &wg_server,
        &server_keys,
        "10.101.0.1/24",
        51820,
    )
    .unwrap();
    wg_peer(
        &topo.wan,
        &wg_server,
        &client_keys.public,
        "10.101.0.2/32",
        None,
    )
    .unwrap();
    let ssh_key = sshd(&procs, &topo.wan, &dir, SSH).unwrap();

    // vpnfp on the laptop, and in router mode on the router beside it.
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "mode = \"enforce\"\n[[block]]\nprograms = [\"/usr/bin/curl\"]\npeer_ports = [8080]\n",
    )
    .unwrap();
    let store = dir.join("local.db");
    let mut local = Command::new("nsenter");
    local
        .arg(format!("--net=/run/netns/{}", laptop.name()))
        .arg(vpnfp_bin())
        .args(["run", "--local", "--iface", HOST_IF, "--cgroup"])
        .arg(&cgroups.watched)
        .args([
            "--json",
            "--flow-idle",
            "2",
            "--window",
            "2",
            "--count",
            "20",
        ])
        .arg("--policy")
        .arg(&policy)
        .arg("--store")
        .arg(&store)
        // `cargo xtask test` says no store to the rest; this run keeps one.
        .env_remove("VPNFP_NO_STORE");
    let (mut local_vpnfp, local_lines) = start_vpnfp(local, "vpnfp --local");
    let mut router = topo.router.command(vpnfp_bin());
    router.args([
        "run",
        "--iface",
        ROUTER_IF,
        "--json",
        "--no-store",
        "--flow-idle",
        "2",
    ]);
    let (mut router_vpnfp, router_lines) = start_vpnfp(router, "vpnfp router");

    // The laptop's programs, each started here (inside `watched`).
    let (curl, curl_ok) = run_curl(&topo, &format!("http://{WEB}/200000"), 10, &[], None);
    let (blocked_curl, blocked_ok) =
        run_curl(&topo, &format!("http://{WEB}:8080/20000"), 3, &[], None);
    let fetch = format!(
        "import urllib.request; assert len(urllib.request.urlopen('http://{WEB}:8080/30000', timeout=10).read()) == 30000"
    );
    let (python, python_ok, _) = client(&topo, &["/usr/bin/python3", "-c", &fetch], None);
    let fork = format!(
        "import os, socket\n\
         s = socket.create_connection(('{WEB}', 80))\n\
         pid = os.fork()\n\
         if pid == 0:\n\
         \x20   s.sendall(b'GET /40000 HTTP/1.0\\r\\n\\r\\n')\n\
         \x20   while s.recv(65536): pass\n\
         \x20   os._exit(0)\n\
         s.close()\n\
         os.waitpid(pid, 0)\n\
         print(pid)\n"
    );
    let (fork_parent, fork_ok, fork_out) = client(&topo, &["/usr/bin/python3", "-c", &fork], None);
    let fork_child: u32 = fork_out.trim().parse().expect("the forked child's pid");
    let (outsider, outsider_ok) = run_curl(
        &topo,
        &format!("http://{WEB}/10000"),
        10,
        &[],
        Some(&cgroups.other),
    );

    ovpn.client(&procs, laptop, "openvpn", "tun-ep-c").unwrap();
    wireguard(
        &procs,
        laptop,
        "wireguard-go",
        &wg_client,
        &client_keys,
        "10.101.0.2/24",
        51821,
    )
    .unwrap();
    wg_peer(
        laptop,
        &wg_client,
        &server_keys.public,
        "10.101.0.1/32",
        Some(&format!("{VPN}:51820")),
    )
    .unwrap();
    let mut ssh = laptop.command("ssh");
    ssh.args(["-F", "/dev/null", "-N", "-i"])
        .arg(&ssh_key)
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes"])
        .args(["-D", "127.0.0.1:1080", &format!("root@{SSH}")]);
    let ssh_pid = procs.spawn("ssh", ssh).unwrap();
    wait(&topo, "10.102.0.1", "openvpn");
    wait(&topo, "10.101.0.1", "wireguard-go");
    let deadline = Instant::now() + Duration::from_secs(20);
    let socks_ok = loop {
        let (_, ok) = run_curl(
            &topo,
            &format!("http://{WEB}/50000"),
            5,
            &["--socks5-hostname", "127.0.0.1:1080"],
            None,
        );
        if ok || Instant::now() > deadline {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    for _ in 0..3 {
        laptop.run("ping", &["-c", "5", "-i", "0.2", "-q", "10.102.0.1"]);
        laptop.run("ping", &["-c", "5", "-i", "0.2", "-q", "10.101.0.1"]);
    }
    // A container behind the laptop (its own namespace, NAT out of the
    // laptop): its packets leave the laptop forwarded, without a socket.
    let container = NetNs::new("ctr");
    container.ip(&[
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "ctr0",
        "netns",
        laptop.name(),
    ]);
    container.ip(&["addr", "add", "10.77.0.2/24", "dev", "eth0"]);
    container.ip(&["link", "set", "eth0", "up"]);
    container.ip(&["route", "add", "default", "via", "10.77.0.1"]);
    laptop.ip(&["addr", "add", "10.77.0.1/24", "dev", "ctr0"]);
    laptop.ip(&["link", "set", "ctr0", "up"]);
    laptop.nat_out(HOST_IF);
    let forwarded = container
        .command("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10"])
        .arg(format!("http://{WEB}/7000"))
        .status()
        .unwrap();
    assert!(
        forwarded.success(),
        "the container's fetch through the laptop failed"
    );
    let openvpn_pid = pid_in(laptop, "openvpn");
    let wg_pid = pid_in(laptop, "wireguard-go");
    procs.stop_all();
    std::thread::sleep(Duration::from_secs(1));
    local_vpnfp.terminate(Duration::from_secs(20));
    router_vpnfp.terminate(Duration::from_secs(20));
    stop.set();
    let _ = (web80.join(), web8080.join());
    let local = events(&local_lines.join().unwrap());
    let router = events(&router_lines.join().unwrap());

    let web = WEB.to_string();
    let vpn = VPN.to_string();
    assert!(curl_ok && python_ok && fork_ok && outsider_ok && socks_ok);
    // curl to port 80: short-lived, attributed after it exited.
    assert_attributed(&local, &web, 80, "tcp", curl, "/usr/bin/curl");
    assert_attributed(&local, &web, 8080, "tcp", python, "/usr/bin/python3.11");
    // The child that used the socket, not the parent that made it.
    assert_attributed(&local, &web, 80, "tcp", fork_child, "/usr/bin/python3.11");
    assert!(
        !flows(&local, &web, 80, "tcp")
            .iter()
            .any(|f| f["process"]["pid"] == fork_parent),
        "the forked socket's flow is credited to the parent"
    );
    assert_attributed(&local, &vpn, 1194, "udp", openvpn_pid, "/usr/sbin/openvpn");
    assert_attributed(&local, &vpn, 51820, "udp", wg_pid, "/usr/bin/wireguard-go");
    assert_attributed(&local, &SSH.to_string(), 22, "tcp", ssh_pid, "/usr/bin/ssh");
    // Outside the watched cgroup: no one's.
    assert!(
        flows(&local, &web, 80, "tcp")
            .iter()
            .any(|f| f["process"].is_null()),
        "the outsider's flow (pid {outsider}) has no null process"
    );
    assert!(
        !local
            .iter()
            .any(|e| e["event"] == "flow" && e["process"]["pid"] == outsider),
        "a process outside the watched cgroup was attributed"
    );
    // The container's flow, forwarded: no socket, and said so.
    assert!(
        flows(&local, &web, 80, "tcp")
            .iter()
            .any(|f| f["process"].is_null() && f["no_socket"] == true),
        "the forwarded flow does not say it had no socket"
    );
    // Named tunnels carry their program.
    for (protocol, pid) in [("openvpn", openvpn_pid), ("wireguard", wg_pid)] {
        assert!(
            local.iter().any(|e| e["event"] == "vpn_detected"
                && e["protocol"] == protocol
                && e["process"]["pid"] == pid),
            "no vpn_detected {protocol} with its process"
        );
    }
    assert!(
        local
            .iter()
            .any(|e| e["event"] == "host_verdict" && e["process"].is_object()),
        "no host verdict names a process"
    );
    // The policy: curl to 8080 blocked, python to the same server passed.
    assert!(!blocked_ok, "curl to port 8080 got through the block");
    assert!(
        local.iter().any(|e| e["event"] == "program_blocked"
            && e["process"]["exe"] == "/usr/bin/curl"
            && e["action"] == "drop"),
        "no program_blocked event for curl"
    );
    let dropped = local
        .iter()
        .filter(|e| e["event"] == "program_drops" && e["process"]["pid"] == blocked_curl)
        .map(|e| e["packets"].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert!(dropped > 0, "no packet of the blocked curl was dropped");
    // Router mode beside it: its own maps, no process field at all.
    let router_flows: Vec<&Value> = router
        .iter()
        .filter(|e| e["event"] == "flow" && e["host"] == LAPTOP.to_string())
        .collect();
    assert!(!router_flows.is_empty(), "router mode saw no laptop flow");
    assert!(
        router_flows.iter().all(|f| f.get("process").is_none()),
        "router mode's flows carry a process"
    );

    // The report groups by program.
    let text = String::from_utf8_lossy(&vpnfp_report(&store, &[])).into_owned();
    eprintln!("{text}");
    assert!(
        text.contains(&format!(
            "openvpn (pid {openvpn_pid}, /usr/sbin/openvpn): openvpn tunnel to {VPN}"
        )),
        "the report does not group the openvpn tunnel under its program"
    );
    let html = dir.join("report.html");
    let csv = dir.join("csv");
    vpnfp_report(
        &store,
        &[
            "--html".as_ref(),
            html.as_os_str(),
            "--csv".as_ref(),
            csv.as_os_str(),
        ],
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"programs\"") && page.contains("/usr/bin/wireguard-go"));
    let flows_csv = std::fs::read_to_string(csv.join("flows.csv")).unwrap();
    assert!(
        flows_csv.lines().next().unwrap().ends_with(",pid,comm,exe")
            && flows_csv.contains(&format!(",{ssh_pid},ssh,/usr/bin/ssh")),
        "flows.csv lacks the processes"
    );
    drop(topo);
    drop(cgroups);
}

/// The pid of the program `comm` running in the namespace `ns` (the lab's
/// helpers start it without handing its pid back).
fn pid_in(ns: &NetNs, comm: &str) -> u32 {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(format!("/run/netns/{}", ns.name()))
        .expect("the namespace's file")
        .ino();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let same_comm =
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm);
        let same_ns =
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == want);
        if same_comm && same_ns {
            return pid;
        }
    }
    panic!("no {comm} running in {}", ns.name());
}
