//! Tools that hide: real obfuscating proxies and covert tunnels from
//! Debian, each a client on its own LAN host and a server on the WAN,
//! carrying web fetches (HTTPS inside the proxy where it is a proxy, so an
//! inner TLS handshake travels inside it, as a browser's would) and a bulk
//! transfer. `cargo xtask lab --only hiding` runs them all beside the
//! ordinary hosts; each tool is also its own group.
//!
//! Configured as their manuals say (v2ray 4.34's JSON, trojan's JSON, the
//! SIP003 plugin options of shadowsocks-libev, Tor's pluggable-transport
//! environment for obfs4proxy), with nothing chosen to help a detector.

use std::{
    net::Ipv4Addr,
    path::Path,
    process::Command,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    TARGET,
    procs::Procs,
    software::{OpenVpn, Pki, TlsCrypt, wait_for},
    topology::Topology,
    traffic::{self, Stop},
};
use crate::netns::NetNs;

/// A tool's server address on the WAN.
pub const fn server(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, last)
}

/// Every hiding tool: its host, its server's address.
pub const TOOLS: &[(&str, Ipv4Addr)] = &[
    ("vmess", server(20)),
    ("vmesswss", server(21)),
    ("vless", server(22)),
    ("v2trojan", server(23)),
    ("v2ss", server(24)),
    ("trojan", server(25)),
    ("ssws", server(26)),
    ("sswss", server(27)),
    ("obfshttp", server(28)),
    ("obfstls", server(29)),
    ("obfs4", server(30)),
    ("stunnel", server(31)),
    ("kcp", server(32)),
    ("kcpaes", server(33)),
    ("tinc", server(34)),
    ("iodine", server(35)),
    ("dns2tcp", server(36)),
    ("ptunnel", server(37)),
    ("ovpnv2", server(38)),
    ("vlessmux", server(39)),
];

/// The ordinary host that downloads one large file over HTTPS.
pub const DOWNLOAD_SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 81);

/// The hosts whose tool is v2ray (one configuration each, both ends).
const V2RAY_HOSTS: [&str; 6] = ["vmess", "vmesswss", "vless", "vlessmux", "v2trojan", "v2ss"];
const V2RAY_ID: &str = "5f1c9c86-4a52-4a87-9d42-6b0c1e3f7a10";
const PASSWORD: &str = "vpnfp-lab-hiding";
/// The name the TLS-based proxies present (the lab CA's certificate covers
/// `*.lab.example`).
const COVER_NAME: &str = "cdn.lab.example";
/// The plain HTTP server on the WAN (`GET /N` answers N bytes).
const HTTP_PORT: u16 = 8080;

fn addr_of(host: &str) -> Ipv4Addr {
    TOOLS
        .iter()
        .find(|(h, _)| *h == host)
        .map(|(_, a)| *a)
        .expect("a hiding tool")
}

/// The HTTPS server (on TARGET) whose pages `host` fetches through its
/// proxy: one per host, because `openssl s_server` serves one connection
/// at a time.
fn https_port(host: &str) -> u16 {
    4431 + TOOLS.iter().position(|(h, _)| *h == host).expect("a tool") as u16
}

/// How a host's applications reach the WAN through its tool.
enum Access {
    /// A SOCKS5 proxy on this local port; `auth` for obfs4's arguments.
    Socks { port: u16, auth: Option<String> },
    /// A local port forwarded to the WAN's HTTP server.
    Forward(u16),
    /// A tunnel interface: the server's tunnel address.
    Tunnel(Ipv4Addr),
}

pub struct Ctx<'a> {
    pub topo: &'a Topology,
    pub procs: &'a Procs,
    pub pki: &'a Pki,
    pub dir: &'a Path,
}

impl Ctx<'_> {
    fn file(&self, name: &str, text: &str) -> anyhow::Result<String> {
        let path = self.dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.display().to_string())
    }

    fn spawn(&self, ns: &NetNs, name: &str, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let mut cmd = ns.command(program);
        cmd.args(args);
        self.procs.spawn(name, cmd).map(|_| ())
    }
}

/// The WAN side: the servers of the selected tools, and the HTTPS pages
/// their hosts fetch.
pub fn servers(cx: &Ctx<'_>, selected: &dyn Fn(&str) -> bool) -> anyhow::Result<()> {
    let wan = &cx.topo.wan;
    for (host, _) in TOOLS.iter().filter(|(h, _)| selected(h)) {
        let mut cmd = wan.command("openssl");
        cmd.args(["s_server", "-www", "-quiet", "-accept"])
            .arg(format!("{TARGET}:{}", https_port(host)))
            .args(["-cert", &cx.pki.path("server.crt")])
            .args(["-key", &cx.pki.path("server.key")]);
        cx.procs.spawn(&format!("pages-{host}"), cmd)?;
        server_of(cx, host)?;
    }
    if selected("download") {
        let www = cx.dir.join("www");
        std::fs::create_dir_all(&www)?;
        std::fs::write(www.join("big.bin"), vec![0x5au8; 40 << 20])?;
        let mut cmd = wan.command("openssl");
        cmd.current_dir(&www)
            .args(["s_server", "-WWW", "-quiet", "-accept"])
            .arg(format!("{DOWNLOAD_SERVER}:443"))
            .args(["-cert", &cx.pki.path("server.crt")])
            .args(["-key", &cx.pki.path("server.key")]);
        cx.procs.spawn("download-server", cmd)?;
    }
    Ok(())
}

fn v2ray_tls(cx: &Ctx<'_>) -> String {
    format!(
        r#""security": "tls", "tlsSettings": {{"certificates": [{{"certificateFile": "{}", "keyFile": "{}"}}]}}"#,
        cx.pki.path("server.crt"),
        cx.pki.path("server.key")
    )
}

const V2RAY_CLIENT_TLS: &str =
    r#""security": "tls", "tlsSettings": {"serverName": "cdn.lab.example", "allowInsecure": true}"#;

/// v2ray's inbound (server) for a host: protocol, port, settings, stream.
fn v2ray_inbound(cx: &Ctx<'_>, host: &str) -> (&'static str, u16, String, String) {
    let tls = v2ray_tls(cx);
    match host {
        "vmess" => (
            "vmess",
            10086,
            format!(r#"{{"clients": [{{"id": "{V2RAY_ID}", "alterId": 0}}]}}"#),
            r#""network": "tcp""#.to_string(),
        ),
        "vmesswss" => (
            "vmess",
            443,
            format!(r#"{{"clients": [{{"id": "{V2RAY_ID}", "alterId": 0}}]}}"#),
            format!(r#""network": "ws", "wsSettings": {{"path": "/ray"}}, {tls}"#),
        ),
        "vless" | "vlessmux" => (
            "vless",
            443,
            format!(r#"{{"clients": [{{"id": "{V2RAY_ID}"}}], "decryption": "none"}}"#),
            format!(r#""network": "tcp", {tls}"#),
        ),
        "v2trojan" => (
            "trojan",
            443,
            format!(r#"{{"clients": [{{"password": "{PASSWORD}"}}]}}"#),
            format!(r#""network": "tcp", {tls}"#),
        ),
        _ => (
            "shadowsocks",
            8388,
            format!(
                r#"{{"method": "aes-256-gcm", "password": "{PASSWORD}", "network": "tcp,udp"}}"#
            ),
            r#""network": "tcp""#.to_string(),
        ),
    }
}

/// v2ray's outbound (client) for a host.
fn v2ray_outbound(host: &str, server: Ipv4Addr, port: u16) -> String {
    let (protocol, settings, stream) = match host {
        "vmess" => (
            "vmess",
            format!(
                r#"{{"vnext": [{{"address": "{server}", "port": {port}, "users": [{{"id": "{V2RAY_ID}", "alterId": 0, "security": "auto"}}]}}]}}"#
            ),
            r#""network": "tcp""#.to_string(),
        ),
        "vmesswss" => (
            "vmess",
            format!(
                r#"{{"vnext": [{{"address": "{server}", "port": {port}, "users": [{{"id": "{V2RAY_ID}", "alterId": 0, "security": "auto"}}]}}]}}"#
            ),
            format!(
                r#""network": "ws", "wsSettings": {{"path": "/ray", "headers": {{"Host": "{COVER_NAME}"}}}}, {V2RAY_CLIENT_TLS}"#
            ),
        ),
        "vless" | "vlessmux" => (
            "vless",
            format!(
                r#"{{"vnext": [{{"address": "{server}", "port": {port}, "users": [{{"id": "{V2RAY_ID}", "encryption": "none"}}]}}]}}"#
            ),
            format!(r#""network": "tcp", {V2RAY_CLIENT_TLS}"#),
        ),
        "v2trojan" => (
            "trojan",
            format!(
                r#"{{"servers": [{{"address": "{server}", "port": {port}, "password": "{PASSWORD}"}}]}}"#
            ),
            format!(r#""network": "tcp", {V2RAY_CLIENT_TLS}"#),
        ),
        _ => (
            "shadowsocks",
            format!(
                r#"{{"servers": [{{"address": "{server}", "port": {port}, "method": "aes-256-gcm", "password": "{PASSWORD}"}}]}}"#
            ),
            r#""network": "tcp""#.to_string(),
        ),
    };
    // Mux: up to 8 connections of the host's applications share one.
    let mux = if host == "vlessmux" {
        r#", "mux": {"enabled": true, "concurrency": 8}"#
    } else {
        ""
    };
    format!(
        r#"{{"protocol": "{protocol}", "settings": {settings}, "streamSettings": {{{stream}}}{mux}}}"#
    )
}

const SOCKS_PORT: u16 = 1080;
/// The plain-HTTP disguises listen here: the WAN's own web server has
/// port 80 on every address.
const WEB_PORT: u16 = 8880;
const FORWARD_PORT: u16 = 8090;

/// What both ends of shadowsocks say: the key, the cipher, the plugin.
fn ss_common(plugin: &str, opts: String) -> Vec<String> {
    let mut args: Vec<String> = ["-k", PASSWORD, "-m", "aes-256-gcm", "--plugin", plugin]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--plugin-opts".to_string(), opts]);
    args
}

/// The SIP003 plugin of a host's shadowsocks, its options and the port.
fn ss_plugin_args(host: &str, cx: &Ctx<'_>, server_side: bool) -> (&'static str, String, u16) {
    match (host, server_side) {
        ("ssws", true) => ("ss-v2ray-plugin", "server".to_string(), WEB_PORT),
        ("ssws", false) => ("ss-v2ray-plugin", format!("host={COVER_NAME}"), WEB_PORT),
        ("sswss", true) => (
            "ss-v2ray-plugin",
            format!(
                "server;tls;host={COVER_NAME};cert={};key={}",
                cx.pki.path("server.crt"),
                cx.pki.path("server.key")
            ),
            443,
        ),
        ("sswss", false) => (
            "ss-v2ray-plugin",
            format!("tls;host={COVER_NAME};cert={}", cx.pki.path("ca.crt")),
            443,
        ),
        ("obfshttp", true) => ("obfs-server", "obfs=http".to_string(), WEB_PORT),
        ("obfshttp", false) => (
            "obfs-local",
            "obfs=http;obfs-host=www.lab.example".to_string(),
            WEB_PORT,
        ),
        ("obfstls", true) => ("obfs-server", "obfs=tls".to_string(), 443),
        (_, _) => (
            "obfs-local",
            "obfs=tls;obfs-host=www.lab.example".to_string(),
            443,
        ),
    }
}

/// v2ray with one inbound and one outbound (v2ray 4's JSON).
fn v2ray(
    cx: &Ctx<'_>,
    ns: &NetNs,
    name: &str,
    inbound: &str,
    outbound: &str,
) -> anyhow::Result<()> {
    let config = cx.file(
        &format!("{name}.json"),
        &format!(
            r#"{{"log": {{"loglevel": "warning"}}, "inbounds": [{inbound}], "outbounds": [{outbound}]}}"#
        ),
    )?;
    cx.spawn(ns, name, "v2ray", &["-config", &config])
}

fn server_of(cx: &Ctx<'_>, host: &str) -> anyhow::Result<()> {
    let wan = &cx.topo.wan;
    let addr = addr_of(host);
    let a = addr.to_string();
    let name = format!("{host}-server");
    match host {
        h if V2RAY_HOSTS.contains(&h) => {
            let (protocol, port, settings, stream) = v2ray_inbound(cx, host);
            v2ray(
                cx,
                wan,
                &name,
                &format!(
                    r#"{{"listen": "{a}", "port": {port}, "protocol": "{protocol}", "settings": {settings}, "streamSettings": {{{stream}}}}}"#
                ),
                r#"{"protocol": "freedom"}"#,
            )
        }
        "trojan" => {
            let config = cx.file(
                &format!("{name}.json"),
                &format!(
                    r#"{{"run_type": "server", "local_addr": "{a}", "local_port": 443,
 "remote_addr": "{TARGET}", "remote_port": {HTTP_PORT}, "password": ["{PASSWORD}"], "log_level": 2,
 "ssl": {{"cert": "{}", "key": "{}", "alpn": ["http/1.1"]}}}}"#,
                    cx.pki.path("server.crt"),
                    cx.pki.path("server.key")
                ),
            )?;
            cx.spawn(wan, &name, "trojan", &["-c", &config])
        }
        "ssws" | "sswss" | "obfshttp" | "obfstls" => {
            let (plugin, opts, port) = ss_plugin_args(host, cx, true);
            let mut args = vec!["-s".to_string(), a, "-p".to_string(), port.to_string()];
            args.extend(ss_common(plugin, opts));
            let mut cmd = wan.command("ss-server");
            cmd.args(args);
            cx.procs.spawn(&name, cmd).map(|_| ())
        }
        "obfs4" => {
            let state = cx.dir.join("obfs4-server");
            std::fs::create_dir_all(&state)?;
            let mut cmd = wan.command("obfs4proxy");
            cmd.env("TOR_PT_MANAGED_TRANSPORT_VER", "1")
                .env("TOR_PT_STATE_LOCATION", &state)
                .env("TOR_PT_SERVER_TRANSPORTS", "obfs4")
                .env("TOR_PT_SERVER_BINDADDR", format!("obfs4-{a}:443"))
                .env("TOR_PT_ORPORT", format!("{TARGET}:{HTTP_PORT}"));
            cx.procs.spawn(&name, cmd).map(|_| ())
        }
        "stunnel" => {
            stunnel_ovpn(cx).server(cx.procs, wan, "stunnel-ovpn-server", "ovs5")?;
            let config = cx.file(
                "stunnel-server.conf",
                &format!(
                    "foreground = yes\npid =\n[ovpn]\naccept = {a}:443\nconnect = 127.0.0.1:1194\ncert = {}\nkey = {}\n",
                    cx.pki.path("server.crt"),
                    cx.pki.path("server.key")
                ),
            )?;
            cx.spawn(wan, &name, "stunnel4", &[&config])
        }
        "kcp" | "kcpaes" => cx.spawn(
            wan,
            &name,
            "kcptun-server",
            &[
                "-t",
                &format!("{TARGET}:{HTTP_PORT}"),
                "-l",
                &format!("{a}:29900"),
                "--key",
                PASSWORD,
                "--crypt",
                if host == "kcp" { "none" } else { "aes" },
            ],
        ),
        "tinc" => tinc(cx, wan, "server"),
        "iodine" => cx.spawn(
            wan,
            &name,
            "iodined",
            &[
                "-f",
                "-c",
                "-l",
                &a,
                "-P",
                PASSWORD,
                "10.109.0.1/27",
                "t1.lab.example",
            ],
        ),
        "dns2tcp" => {
            let config = cx.file(
                "dns2tcpd.conf",
                &format!(
                    "listen = {a}\nport = 53\nuser = nobody\nchroot = /tmp\ndomain = t2.lab.example\nresources = web:{TARGET}:{HTTP_PORT}\n"
                ),
            )?;
            cx.spawn(wan, &name, "dns2tcpd", &["-F", "-f", &config])
        }
        "ptunnel" => {
            // ptunnel-ng answers from a raw socket bound to no address, so
            // its replies would leave from the WAN link's own address,
            // which the router's NAT cannot match to the request: the
            // link's route names the tool's address as the source, as a
            // server with that address on its only interface would send.
            wan.ip(&[
                "route",
                "replace",
                "10.200.0.0/30",
                "dev",
                "wan0",
                "src",
                &a,
            ]);
            cx.spawn(
                wan,
                &name,
                "ptunnel-ng",
                &[&format!("-r{TARGET}"), &format!("-R{HTTP_PORT}")],
            )
        }
        "ovpnv2" => ovpn_v2(cx).server(cx.procs, wan, &name, "ovs6"),
        other => bail!("no server for {other}"),
    }
}

fn stunnel_ovpn<'a>(cx: &Ctx<'a>) -> OpenVpn<'a> {
    OpenVpn {
        pki: cx.pki,
        proto: "tcp",
        server: Ipv4Addr::LOCALHOST,
        port: 1194,
        tls_crypt: TlsCrypt::None,
        tunnel: (Ipv4Addr::new(10, 111, 0, 1), Ipv4Addr::new(10, 111, 0, 2)),
    }
}

fn ovpn_v2<'a>(cx: &Ctx<'a>) -> OpenVpn<'a> {
    OpenVpn {
        pki: cx.pki,
        proto: "udp",
        server: addr_of("ovpnv2"),
        port: 1194,
        tls_crypt: TlsCrypt::V2,
        tunnel: (Ipv4Addr::new(10, 112, 0, 1), Ipv4Addr::new(10, 112, 0, 2)),
    }
}

/// tinc 1.0 in router mode, one node per side; `side` is "server" or
/// "client". Keys are made once, by the server's call.
fn tinc(cx: &Ctx<'_>, ns: &NetNs, side: &str) -> anyhow::Result<()> {
    let base = cx.dir.join("tinc");
    let me = if side == "server" { "server" } else { "client" };
    if side == "server" {
        for (node, addr) in [("server", "10.110.0.1"), ("client", "10.110.0.2")] {
            let dir = base.join(node);
            std::fs::create_dir_all(dir.join("hosts"))?;
            let mut conf = format!("Name = {node}\nDeviceType = tun\nInterface = tinc0\n");
            if node == "client" {
                conf.push_str("ConnectTo = server\n");
            }
            std::fs::write(dir.join("tinc.conf"), conf)?;
            let mut host = format!("Subnet = {addr}/32\n");
            if node == "server" {
                host.push_str(&format!("Address = {}\n", addr_of("tinc")));
            }
            std::fs::write(dir.join("hosts").join(node), host)?;
            let up = dir.join("tinc-up");
            std::fs::write(
                &up,
                format!(
                    "#!/bin/sh\nip addr add {addr}/24 dev $INTERFACE\nip link set $INTERFACE up\n"
                ),
            )?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&up, std::fs::Permissions::from_mode(0o755))?;
            let out = Command::new("tincd")
                .arg("-c")
                .arg(&dir)
                .arg("-K2048")
                .stdin(std::process::Stdio::null())
                .output()?;
            if !out.status.success() {
                bail!("tincd -K: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
        }
        // Each node knows the other's host file (its public key).
        for (a, b) in [("server", "client"), ("client", "server")] {
            std::fs::copy(
                base.join(a).join("hosts").join(a),
                base.join(b).join("hosts").join(a),
            )?;
        }
    }
    let dir = base.join(me);
    let mut cmd = ns.command("tincd");
    cmd.arg("-c")
        .arg(&dir)
        .args(["-D", "-d1"])
        .arg(format!("--pidfile={}", dir.join("pid").display()));
    cx.procs.spawn(&format!("tinc-{me}"), cmd).map(|_| ())
}

/// Starts the host's client; returns how its applications reach the WAN.
fn client_of(cx: &Ctx<'_>, host: &str) -> anyhow::Result<Access> {
    let ns = &cx.topo.host(host).ns;
    let addr = addr_of(host);
    let a = addr.to_string();
    let name = format!("{host}-client");
    let socks = Access::Socks {
        port: SOCKS_PORT,
        auth: None,
    };
    match host {
        h if V2RAY_HOSTS.contains(&h) => {
            let (_, port, _, _) = v2ray_inbound(cx, host);
            v2ray(
                cx,
                ns,
                &name,
                &format!(
                    r#"{{"listen": "127.0.0.1", "port": {SOCKS_PORT}, "protocol": "socks", "settings": {{"udp": false}}}}"#
                ),
                &v2ray_outbound(host, addr, port),
            )?;
            Ok(socks)
        }
        "trojan" => {
            let config = cx.file(
                &format!("{name}.json"),
                &format!(
                    r#"{{"run_type": "client", "local_addr": "127.0.0.1", "local_port": {SOCKS_PORT},
 "remote_addr": "{a}", "remote_port": 443, "password": ["{PASSWORD}"], "log_level": 2,
 "ssl": {{"verify": true, "verify_hostname": true, "cert": "{}", "sni": "{COVER_NAME}", "alpn": ["h2", "http/1.1"]}}}}"#,
                    cx.pki.path("ca.crt")
                ),
            )?;
            cx.spawn(ns, &name, "trojan", &["-c", &config])?;
            Ok(socks)
        }
        "ssws" | "sswss" | "obfshttp" | "obfstls" => {
            let (plugin, opts, port) = ss_plugin_args(host, cx, false);
            let mut args: Vec<String> = ["-s", &a, "-p", &port.to_string(), "-b", "127.0.0.1"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.extend(["-l".to_string(), SOCKS_PORT.to_string()]);
            args.extend(ss_common(plugin, opts));
            let mut cmd = ns.command("ss-local");
            cmd.args(args);
            cx.procs.spawn(&name, cmd)?;
            Ok(socks)
        }
        "obfs4" => {
            // The server wrote its bridge line (with the client's `cert`).
            let line_path = cx.dir.join("obfs4-server").join("obfs4_bridgeline.txt");
            wait_for("obfs4's bridge line", Duration::from_secs(10), || {
                std::fs::read_to_string(&line_path).is_ok_and(|t| t.contains("cert="))
            })?;
            let line = std::fs::read_to_string(&line_path)?;
            let cert = line
                .lines()
                .filter(|l| !l.starts_with('#'))
                .flat_map(str::split_whitespace)
                .find_map(|w| w.strip_prefix("cert="))
                .context("no cert= in obfs4's bridge line")?
                .to_string();
            let state = cx.dir.join("obfs4-client");
            std::fs::create_dir_all(&state)?;
            let mut cmd = ns.command("obfs4proxy");
            cmd.env("TOR_PT_MANAGED_TRANSPORT_VER", "1")
                .env("TOR_PT_STATE_LOCATION", &state)
                .env("TOR_PT_CLIENT_TRANSPORTS", "obfs4");
            cx.procs.spawn(&name, cmd)?;
            // Its SOCKS port is chosen at start and announced on stdout.
            let log = cx.procs.log_path(&name);
            let mut port = 0;
            wait_for("obfs4's SOCKS port", Duration::from_secs(10), || {
                port = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("CMETHOD obfs4 socks5 "))
                    .and_then(|s| s.trim().rsplit(':').next()?.parse().ok())
                    .unwrap_or(0);
                port != 0
            })?;
            // Pluggable-transport arguments ride in the SOCKS user name and
            // password, which the transport concatenates.
            Ok(Access::Socks {
                port,
                auth: Some(format!("cert={cert};iat-mode=:0")),
            })
        }
        "stunnel" => {
            let config = cx.file(
                "stunnel-client.conf",
                &format!(
                    "foreground = yes\npid =\nclient = yes\n[ovpn]\naccept = 127.0.0.1:1194\nconnect = {a}:443\nsni = {COVER_NAME}\n"
                ),
            )?;
            cx.spawn(ns, &name, "stunnel4", &[&config])?;
            std::thread::sleep(Duration::from_millis(300));
            stunnel_ovpn(cx).client(cx.procs, ns, "stunnel-ovpn-client", "ovc5")?;
            Ok(Access::Tunnel(Ipv4Addr::new(10, 111, 0, 1)))
        }
        "kcp" | "kcpaes" => {
            cx.spawn(
                ns,
                &name,
                "kcptun-client",
                &[
                    "-r",
                    &format!("{a}:29900"),
                    "-l",
                    &format!("127.0.0.1:{FORWARD_PORT}"),
                    "--key",
                    PASSWORD,
                    "--crypt",
                    if host == "kcp" { "none" } else { "aes" },
                ],
            )?;
            Ok(Access::Forward(FORWARD_PORT))
        }
        "tinc" => {
            tinc(cx, ns, "client")?;
            Ok(Access::Tunnel(Ipv4Addr::new(10, 110, 0, 1)))
        }
        "iodine" => {
            cx.spawn(
                ns,
                &name,
                "iodine",
                &["-f", "-r", "-P", PASSWORD, &a, "t1.lab.example"],
            )?;
            Ok(Access::Tunnel(Ipv4Addr::new(10, 109, 0, 1)))
        }
        "dns2tcp" => {
            cx.spawn(
                ns,
                &name,
                "dns2tcpc",
                &[
                    "-z",
                    "t2.lab.example",
                    "-r",
                    "web",
                    "-l",
                    &FORWARD_PORT.to_string(),
                    &a,
                ],
            )?;
            Ok(Access::Forward(FORWARD_PORT))
        }
        "ptunnel" => {
            cx.spawn(
                ns,
                &name,
                "ptunnel-ng",
                &[
                    "-p",
                    &a,
                    "-l",
                    &FORWARD_PORT.to_string(),
                    &format!("-r{TARGET}"),
                    &format!("-R{HTTP_PORT}"),
                ],
            )?;
            Ok(Access::Forward(FORWARD_PORT))
        }
        "ovpnv2" => {
            ovpn_v2(cx).client(cx.procs, ns, &name, "ovc6")?;
            Ok(Access::Tunnel(Ipv4Addr::new(10, 112, 0, 1)))
        }
        other => bail!("no client for {other}"),
    }
}

/// curl's arguments and the URLs of a host's pages and of its bulk file.
fn urls(host: &str, access: &Access) -> (Vec<String>, Vec<String>, String) {
    // A DNS or ICMP tunnel carries kilobytes a second, not hundreds.
    let (page, bulk_size) = match host {
        "iodine" | "dns2tcp" | "ptunnel" => (2_000, 20_000),
        _ => (20_000, 300_000),
    };
    match access {
        Access::Socks { port, auth } => {
            let mut args = vec![
                "-k".to_string(),
                "--socks5-hostname".to_string(),
                format!("127.0.0.1:{port}"),
            ];
            if let Some(auth) = auth {
                // obfs4's SOCKS destination is the bridge; the bridge's
                // server forwards to the plain HTTP service behind it.
                args.push("--proxy-user".to_string());
                args.push(auth.clone());
                let bridge = format!("http://{}:443", addr_of(host));
                return (
                    args,
                    vec![format!("{bridge}/{page}")],
                    format!("{bridge}/{bulk_size}"),
                );
            }
            (
                args,
                vec![
                    format!("https://{TARGET}:{}/", https_port(host)),
                    format!("http://{TARGET}:{HTTP_PORT}/{page}"),
                ],
                format!("http://{TARGET}:{HTTP_PORT}/{bulk_size}"),
            )
        }
        Access::Forward(port) => (
            Vec::new(),
            vec![format!("http://127.0.0.1:{port}/{page}")],
            format!("http://127.0.0.1:{port}/{bulk_size}"),
        ),
        Access::Tunnel(server) => (
            Vec::new(),
            vec![format!("http://{server}:{HTTP_PORT}/{page}")],
            format!("http://{server}:{HTTP_PORT}/{bulk_size}"),
        ),
    }
}

/// A host's pages every 0.7 s and its bulk transfer, through its tool.
fn traffic_of(
    cx: &Ctx<'_>,
    host: &str,
    access: &Access,
    stop: &Stop,
    threads: &mut Vec<JoinHandle<()>>,
) {
    let ns = &cx.topo.host(host).ns;
    let (args, pages, bulk) = urls(host, access);
    threads.push(traffic::fetch_loop(
        ns,
        args.clone(),
        pages,
        Duration::from_millis(700),
        stop.clone(),
    ));
    let mut bulk_args = args;
    bulk_args.extend(["--limit-rate".to_string(), "120k".to_string()]);
    threads.push(traffic::fetch_loop(
        ns,
        bulk_args,
        vec![bulk],
        Duration::from_millis(100),
        stop.clone(),
    ));
}

/// Whether one fetch through the tool works.
fn works(ns: &NetNs, args: &[String], url: &str) -> bool {
    ns.command("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "3", "-f"])
        .args(args)
        .arg(url)
        .status()
        .is_ok_and(|s| s.success())
}

/// The clients of the selected tools, then their traffic once each
/// carries a page. Returns the tools that never did, each reported on
/// standard error with the end of its log (a policy may block them, and
/// NFQUEUE mode loses ptunnel-ng's first packets: see docs/hiding.md).
pub fn clients(
    cx: &Ctx<'_>,
    selected: &dyn Fn(&str) -> bool,
    stop: &Stop,
    threads: &mut Vec<JoinHandle<()>>,
    may_fail: bool,
) -> anyhow::Result<Vec<&'static str>> {
    let mut started = Vec::new();
    for (host, _) in TOOLS.iter().filter(|(h, _)| selected(h)) {
        let access = client_of(cx, host)?;
        started.push((*host, access));
    }
    // Every tool gets the same 45 s to carry its first page, polled in
    // turn so that one slow tool does not eat the others' time; each one's
    // traffic starts as soon as it carries one.
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut waiting: Vec<(&'static str, Access)> = started;
    while !waiting.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for (host, access) in waiting {
            let (args, pages, _) = urls(host, &access);
            if works(&cx.topo.host(host).ns, &args, &pages[0]) {
                traffic_of(cx, host, &access, stop, threads);
            } else {
                still.push((host, access));
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    for (host, access) in &waiting {
        let mut e = format!("{host}'s tool carried no page within 45 s");
        if let Err(exited) = cx.procs.check(&format!("{host}-client")) {
            e.push_str(&format!(": {exited:#}"));
        }
        if may_fail {
            e.push_str(" (blocked by the policy?)");
        }
        eprintln!("vpnfp-lab: {e}");
        // Its traffic all the same: it may start late.
        traffic_of(cx, host, access, stop, threads);
    }
    let silent: Vec<&'static str> = waiting.iter().map(|(h, _)| *h).collect();
    if selected("download") {
        // One long HTTPS download, at a modest pace.
        let mut cmd = cx.topo.host("download").ns.command("curl");
        cmd.args(["-s", "-k", "-o", "/dev/null", "--limit-rate", "400k"])
            .args([
                "--resolve",
                &format!("files.lab.example:443:{DOWNLOAD_SERVER}"),
            ])
            .arg("https://files.lab.example/big.bin");
        cx.procs.spawn("download-client", cmd)?;
    }
    Ok(silent)
}
