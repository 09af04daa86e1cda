//! Real VPN software from Debian, configured in the lab's directory and run
//! in the lab's namespaces: servers in the WAN namespace, clients in their
//! hosts' namespaces. Nothing here writes outside the lab's directory;
//! daemons that insist on `/run` (strongSwan's charon, sshd) get a private
//! mount namespace with their own `/run`.

use std::{
    fs,
    net::Ipv4Addr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::netns::NetNs;

use super::procs::Procs;

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until `ready` or the timeout; the error names `what`.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what}: not ready after {timeout:?}")
}

/// Certificates and keys for the lab's servers and clients.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path, server_ips: &[Ipv4Addr]) -> anyhow::Result<Self> {
        let dir = dir.join("pki");
        fs::create_dir_all(&dir)?;
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", &p("ca.key"), "-out", &p("ca.crt"), "-days", "2"])
            .args(["-subj", "/CN=vpnfp lab CA"]))?;
        let sans: Vec<String> = server_ips.iter().map(|ip| format!("IP:{ip}")).collect();
        for (name, ext) in [
            (
                "server",
                format!(
                    "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\nsubjectAltName=DNS:vpn.lab.example,DNS:*.lab.example,{}\n",
                    sans.join(",")
                ),
            ),
            (
                "client",
                "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
                    .to_string(),
            ),
        ] {
            run(Command::new("openssl")
                .arg("req")
                .args(ec)
                .args(["-keyout", &p(&format!("{name}.key"))])
                .args(["-out", &p(&format!("{name}.csr"))])
                .args(["-subj", &format!("/CN={name}")]))?;
            fs::write(dir.join(format!("{name}.ext")), ext)?;
            run(Command::new("openssl")
                .args(["x509", "-req", "-in", &p(&format!("{name}.csr"))])
                .args([
                    "-CA",
                    &p("ca.crt"),
                    "-CAkey",
                    &p("ca.key"),
                    "-CAcreateserial",
                ])
                .args(["-out", &p(&format!("{name}.crt")), "-days", "2"])
                .args(["-extfile", &p(&format!("{name}.ext"))]))?;
        }
        run(Command::new("openvpn").args(["--genkey", "tls-crypt", &p("tls-crypt.key")]))?;
        run(Command::new("openvpn").args([
            "--genkey",
            "tls-crypt-v2-server",
            &p("tls-crypt-v2-server.key"),
        ]))?;
        run(Command::new("openvpn").args([
            "--tls-crypt-v2",
            &p("tls-crypt-v2-server.key"),
            "--genkey",
            "tls-crypt-v2-client",
            &p("tls-crypt-v2-client.key"),
        ]))?;
        Ok(Self { dir })
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }

    /// The server key's SHA-256 pin, as openconnect wants it.
    pub fn server_pin(&self) -> anyhow::Result<String> {
        let out = run(Command::new("sh").arg("-c").arg(format!(
            "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
            self.path("server.crt")
        )))?;
        Ok(format!("pin-sha256:{}", out.trim()))
    }
}

/// A WireGuard interface name unique on this machine: wireguard-go's
/// control sockets (`/var/run/wireguard/NAME.sock`) are shared by every
/// namespace.
pub fn wg_name(tag: &str) -> String {
    format!("vw{}{tag}", std::process::id() % 100_000)
}

pub struct WgKeys {
    pub private: PathBuf,
    pub public: String,
}

/// The key pair called `name` in `dir`, made on first use.
pub fn wg_keys(dir: &Path, name: &str) -> anyhow::Result<WgKeys> {
    let path = dir.join(format!("{name}.wgkey"));
    if !path.exists() {
        let private = run(Command::new("wg").arg("genkey"))?;
        fs::write(&path, private.trim())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    }
    let mut pubkey = Command::new("sh");
    pubkey
        .arg("-c")
        .arg(format!("wg pubkey < {}", path.display()));
    let public = run(&mut pubkey)?.trim().to_string();
    Ok(WgKeys {
        private: path,
        public,
    })
}

/// A wireguard-go interface in `ns` with `addr`, listening on `port`.
pub fn wireguard(
    procs: &Procs,
    ns: &NetNs,
    proc_name: &str,
    iface: &str,
    keys: &WgKeys,
    addr: &str,
    port: u16,
) -> anyhow::Result<()> {
    let mut cmd = ns.command("wireguard-go");
    cmd.args(["-f", iface]);
    procs.spawn(proc_name, cmd)?;
    wait_for(
        &format!("wireguard-go {iface}"),
        Duration::from_secs(10),
        || {
            ns.command("ip")
                .args(["link", "show", iface])
                .output()
                .is_ok_and(|o| o.status.success())
                && Path::new(&format!("/var/run/wireguard/{iface}.sock")).exists()
        },
    )?;
    run(ns.command("wg").args([
        "set",
        iface,
        "listen-port",
        &port.to_string(),
        "private-key",
        &keys.private.to_string_lossy(),
    ]))?;
    run(ns.command("ip").args(["addr", "add", addr, "dev", iface]))?;
    run(ns.command("ip").args(["link", "set", iface, "up"]))?;
    Ok(())
}

pub fn wg_peer(
    ns: &NetNs,
    iface: &str,
    public: &str,
    allowed: &str,
    endpoint: Option<&str>,
) -> anyhow::Result<()> {
    let mut cmd = ns.command("wg");
    cmd.args(["set", iface, "peer", public, "allowed-ips", allowed]);
    if let Some(e) = endpoint {
        cmd.args(["endpoint", e]);
    }
    run(&mut cmd).map(|_| ())
}

/// OpenVPN's control-channel wrapping.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TlsCrypt {
    None,
    /// `--tls-crypt`: one key shared by all.
    V1,
    /// `--tls-crypt-v2`: a key per client, wrapped by the server's.
    V2,
}

/// OpenVPN 2.6 in peer-to-peer TLS mode (one client per server).
pub struct OpenVpn<'a> {
    pub pki: &'a Pki,
    /// "udp" or "tcp".
    pub proto: &'static str,
    pub server: Ipv4Addr,
    pub port: u16,
    pub tls_crypt: TlsCrypt,
    /// The tunnel's two ends: server, client.
    pub tunnel: (Ipv4Addr, Ipv4Addr),
}

impl OpenVpn<'_> {
    /// What both ends say; `side` is "server" or "client" (its certificate,
    /// its TCP role, its end of the tunnel first).
    fn common(&self, cmd: &mut Command, dev: &str, side: &str) {
        let (local, remote) = if side == "server" {
            self.tunnel
        } else {
            (self.tunnel.1, self.tunnel.0)
        };
        let proto = match self.proto {
            "tcp" => format!("tcp-{side}"),
            other => other.to_string(),
        };
        cmd.args(["--dev", dev, "--dev-type", "tun", "--verb", "3"])
            .args(["--ca", &self.pki.path("ca.crt"), "--dh", "none"])
            .args(["--ping", "1", "--ping-restart", "5"])
            .args(["--data-ciphers", "AES-256-GCM:AES-128-GCM"])
            .args(["--proto", &proto])
            .args(["--cert", &self.pki.path(&format!("{side}.crt"))])
            .args(["--key", &self.pki.path(&format!("{side}.key"))])
            .args(["--ifconfig", &local.to_string(), &remote.to_string()]);
        match self.tls_crypt {
            TlsCrypt::None => {}
            TlsCrypt::V1 => {
                cmd.args(["--tls-crypt", &self.pki.path("tls-crypt.key")]);
            }
            // Each client has its own key, wrapped by the server's.
            TlsCrypt::V2 => {
                cmd.args([
                    "--tls-crypt-v2",
                    &self.pki.path(&format!("tls-crypt-v2-{side}.key")),
                ]);
            }
        }
    }

    pub fn server(&self, procs: &Procs, wan: &NetNs, name: &str, dev: &str) -> anyhow::Result<()> {
        let mut cmd = wan.command("openvpn");
        self.common(&mut cmd, dev, "server");
        cmd.args(["--tls-server", "--local", &self.server.to_string()])
            .args(["--lport", &self.port.to_string()]);
        procs.spawn(name, cmd)?;
        Ok(())
    }

    pub fn client(&self, procs: &Procs, host: &NetNs, name: &str, dev: &str) -> anyhow::Result<()> {
        let mut cmd = host.command("openvpn");
        self.common(&mut cmd, dev, "client");
        cmd.args(["--tls-client", "--nobind", "--remote-cert-tls", "server"])
            .args(["--remote", &self.server.to_string(), &self.port.to_string()])
            .args(["--connect-retry", "1", "1"]);
        procs.spawn(name, cmd)?;
        Ok(())
    }
}

/// ocserv (AnyConnect-compatible server) and openconnect.
pub fn ocserv(
    procs: &Procs,
    wan: &NetNs,
    dir: &Path,
    pki: &Pki,
    listen: Ipv4Addr,
) -> anyhow::Result<()> {
    let dir = dir.join("ocserv");
    fs::create_dir_all(&dir)?;
    let passwd = dir.join("passwd");
    let mut ocpasswd = Command::new("sh");
    ocpasswd.arg("-c").arg(format!(
        "printf 'labpass\\nlabpass\\n' | ocpasswd -c {} labuser",
        passwd.display()
    ));
    run(&mut ocpasswd)?;
    let conf = format!(
        "auth = \"plain[passwd={passwd}]\"
listen-host = {listen}
tcp-port = 443
udp-port = 443
run-as-user = nobody
run-as-group = nogroup
socket-file = {dir}/ocserv.sock
server-cert = {cert}
server-key = {key}
isolate-workers = false
max-clients = 16
keepalive = 32400
dpd = 90
mobile-dpd = 1800
try-mtu-discovery = false
tls-priorities = \"NORMAL:%SERVER_PRECEDENCE\"
auth-timeout = 240
cookie-timeout = 300
deny-roaming = false
rekey-time = 172800
rekey-method = ssl
use-occtl = false
pid-file = {dir}/ocserv.pid
device = vpns
predictable-ips = true
ipv4-network = 10.103.0.0
ipv4-netmask = 255.255.255.0
ping-leases = false
",
        passwd = passwd.display(),
        dir = dir.display(),
        cert = pki.path("server.crt"),
        key = pki.path("server.key"),
    );
    let conf_path = dir.join("ocserv.conf");
    fs::write(&conf_path, conf)?;
    let mut cmd = wan.command("ocserv");
    cmd.args(["-f", "-c", &conf_path.to_string_lossy()]);
    procs.spawn("ocserv", cmd)?;
    Ok(())
}

pub fn openconnect(
    procs: &Procs,
    host: &NetNs,
    dir: &Path,
    pki: &Pki,
    server: Ipv4Addr,
    iface: &str,
) -> anyhow::Result<()> {
    // openconnect's vpnc-script, minimal: the address and a route.
    let script = dir.join("ocserv").join("client-script.sh");
    fs::write(
        &script,
        "#!/bin/sh\ncase \"$reason\" in\n  connect) ip addr add \"$INTERNAL_IP4_ADDRESS/32\" dev \"$TUNDEV\"; ip link set \"$TUNDEV\" up mtu \"${INTERNAL_IP4_MTU:-1400}\"; ip route add 10.103.0.0/24 dev \"$TUNDEV\" ;;\nesac\nexit 0\n",
    )?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    let mut cmd = host.command("openconnect");
    cmd.args([
        "--protocol=anyconnect",
        "--user=labuser",
        "--passwd-on-stdin",
    ])
    .args(["--servercert", &pki.server_pin()?])
    .arg("--script")
    .arg(&script)
    .args(["--interface", iface])
    .arg(format!("https://{server}/"));
    let (_, mut stdin) = procs.spawn_piped("openconnect", cmd)?;
    use std::io::Write;
    stdin.write_all(b"labpass\n")?;
    Ok(())
}

/// strongSwan's charon with the kernel-libipsec plugin (ESP in userspace
/// over a TUN device), in a private mount namespace with its own `/run`.
pub struct Charon {
    pub conf_dir: PathBuf,
    pub pid: u32,
}

const CHARON_PLUGINS: &str = "random nonce aes sha1 sha2 hmac gmp kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici";

impl Charon {
    /// `connection`: the body of `connections { lab { ... } }`.
    pub fn start(
        procs: &Procs,
        ns: &NetNs,
        dir: &Path,
        name: &str,
        connection: &str,
    ) -> anyhow::Result<Self> {
        let conf_dir = dir.join(name);
        fs::create_dir_all(&conf_dir)?;
        fs::write(
            conf_dir.join("strongswan.conf"),
            format!(
                "charon {{\n  load_modular = no\n  load = {CHARON_PLUGINS}\n  plugins {{\n    vici {{\n      socket = unix:///run/charon.vici\n    }}\n  }}\n  filelog {{\n    log {{\n      path = {}\n      default = 1\n    }}\n  }}\n}}\nswanctl {{\n  load = pem pkcs1 x509 pubkey\n}}\n",
                conf_dir.join("charon.log").display()
            ),
        )?;
        fs::write(
            conf_dir.join("swanctl.conf"),
            format!(
                "connections {{\n  lab {{\n{connection}\n  }}\n}}\nsecrets {{\n  ike-lab {{\n    id-1 = server.lab\n    id-2 = client.lab\n    secret = \"vpnfp-lab-psk-0123456789\"\n  }}\n}}\n"
            ),
        )?;
        let mut cmd = ns.command("unshare");
        cmd.args(["-m", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /run && exec /usr/lib/ipsec/charon");
        cmd.env("STRONGSWAN_CONF", conf_dir.join("strongswan.conf"));
        let pid = procs.spawn(name, cmd)?;
        let charon = Self { conf_dir, pid };
        wait_for("charon's control socket", Duration::from_secs(10), || {
            charon.swanctl(&["--stats"]).is_ok()
        })?;
        charon.swanctl(&[
            "--load-all",
            "--file",
            &charon.conf_dir.join("swanctl.conf").to_string_lossy(),
        ])?;
        Ok(charon)
    }

    /// swanctl inside charon's network and mount namespaces.
    pub fn swanctl(&self, args: &[&str]) -> anyhow::Result<String> {
        run(Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "-n", "swanctl"])
            .args(args)
            .env("STRONGSWAN_CONF", self.conf_dir.join("strongswan.conf")))
    }
}

/// The IKEv2 connection body of the server (`client`: false) or client.
pub fn ikev2_connection(client: bool, server: Ipv4Addr, tunnel: (Ipv4Addr, Ipv4Addr)) -> String {
    let (local_id, remote_id, local_ts, remote_ts) = if client {
        ("client.lab", "server.lab", tunnel.1, tunnel.0)
    } else {
        ("server.lab", "client.lab", tunnel.0, tunnel.1)
    };
    format!(
        "    version = 2
    {addrs}
    encap = yes
    mobike = no
    proposals = aes128-sha256-modp2048
    local {{
      auth = psk
      id = {local_id}
    }}
    remote {{
      auth = psk
      id = {remote_id}
    }}
    children {{
      lab {{
        local_ts = {local_ts}/32
        remote_ts = {remote_ts}/32
        esp_proposals = aes128-sha256
        {start}
      }}
    }}",
        addrs = if client {
            format!("remote_addrs = {server}")
        } else {
            format!("local_addrs = {server}")
        },
        start = if client { "start_action = start" } else { "" },
    )
}

/// An sshd of its own (host key, authorized key, config) and the client
/// key, in `dir`.
pub fn sshd(procs: &Procs, wan: &NetNs, dir: &Path, listen: Ipv4Addr) -> anyhow::Result<PathBuf> {
    let dir = dir.join("ssh");
    fs::create_dir_all(&dir)?;
    for key in ["host_key", "client_key"] {
        let path = dir.join(key);
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path))?;
    }
    fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))?;
    let conf = dir.join("sshd_config");
    fs::write(
        &conf,
        format!(
            "ListenAddress {listen}:22\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nAllowTcpForwarding yes\nPidFile /run/sshd.pid\n",
            d = dir.display()
        ),
    )?;
    let mut cmd = wan.command("unshare");
    cmd.args(["-m", "sh", "-c"]).arg(format!(
        "mount -t tmpfs tmpfs /run && mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -f {}",
        conf.display()
    ));
    procs.spawn("sshd", cmd)?;
    Ok(dir.join("client_key"))
}

/// `ssh -N` with local forwards `(local port, target)`.
pub fn ssh_forward(
    procs: &Procs,
    host: &NetNs,
    key: &Path,
    server: Ipv4Addr,
    forwards: &[(u16, String)],
) -> anyhow::Result<()> {
    let mut cmd = host.command("ssh");
    cmd.args(["-F", "/dev/null", "-N", "-i"])
        .arg(key)
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ExitOnForwardFailure=yes",
        ]);
    for (port, target) in forwards {
        cmd.args(["-L", &format!("127.0.0.1:{port}:{target}")]);
    }
    cmd.arg(format!("root@{server}"));
    procs.spawn("ssh", cmd)?;
    Ok(())
}

/// shadowsocks-libev: the server, and on the host a port forward (for
/// iperf3) and a SOCKS proxy (for page fetches).
pub const SS_METHOD: &str = "chacha20-ietf-poly1305";
pub const SS_PASSWORD: &str = "vpnfp-lab-shadowsocks";

pub fn ss_server(procs: &Procs, wan: &NetNs, listen: Ipv4Addr) -> anyhow::Result<()> {
    let mut cmd = wan.command("ss-server");
    cmd.args([
        "-s",
        &listen.to_string(),
        "-p",
        "8388",
        "-k",
        SS_PASSWORD,
        "-m",
        SS_METHOD,
    ]);
    procs.spawn("ss-server", cmd)?;
    Ok(())
}

pub fn ss_clients(
    procs: &Procs,
    host: &NetNs,
    server: Ipv4Addr,
    tunnel: (u16, &str),
    socks: u16,
) -> anyhow::Result<()> {
    let server = server.to_string();
    let mut t = host.command("ss-tunnel");
    t.args([
        "-s",
        &server,
        "-p",
        "8388",
        "-k",
        SS_PASSWORD,
        "-m",
        SS_METHOD,
    ])
    .args([
        "-b",
        "127.0.0.1",
        "-l",
        &tunnel.0.to_string(),
        "-L",
        tunnel.1,
    ]);
    procs.spawn("ss-tunnel", t)?;
    let mut l = host.command("ss-local");
    l.args([
        "-s",
        &server,
        "-p",
        "8388",
        "-k",
        SS_PASSWORD,
        "-m",
        SS_METHOD,
    ])
    .args(["-b", "127.0.0.1", "-l", &socks.to_string()]);
    procs.spawn("ss-local", l)?;
    Ok(())
}

/// dnsmasq: www9 to www24.lab.example are the web servers, the VPN
/// servers have reverse names.
pub fn dnsmasq(procs: &Procs, wan: &NetNs, dir: &Path, listen: Ipv4Addr) -> anyhow::Result<()> {
    let mut cmd = wan.command("dnsmasq");
    cmd.args([
        "-k",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--port=53",
    ])
    .arg(format!("--listen-address={listen}"))
    .args(["--local-ttl=300", "--address=/example.org/192.0.2.11"])
    .args((9..=24).map(|i| format!("--address=/www{i}.lab.example/192.0.2.{i}")))
    // Reverse names of the VPN servers (for --resolve).
    .args(
        [
            (1, "wg"),
            (2, "openvpn"),
            (3, "openvpn-tcp"),
            (4, "anyconnect"),
            (5, "ipsec"),
            (6, "ss"),
            (8, "ssh"),
        ]
        .map(|(i, n)| format!("--ptr-record={i}.100.51.198.in-addr.arpa,{n}.vpn.lab.example")),
    )
    .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
    .args(["--user=nobody", "--log-facility=-"]);
    procs.spawn("dnsmasq", cmd)?;
    Ok(())
}
