//! A clear answer up front instead of an EPERM from deep inside the loader.

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// The effective capability set, if /proc says.
fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

pub fn has_net_admin() -> bool {
    effective().is_some_and(|caps| caps & (1u64 << CAP_NET_ADMIN) != 0)
}

/// What is missing to load and attach XDP, or `None` if nothing is.
pub fn missing_for_xdp() -> Option<String> {
    let effective = effective()?;
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "vpnfp needs root (or {}) to load and attach the XDP program; run it with sudo",
            missing.join(" + ")
        ))
    }
}
