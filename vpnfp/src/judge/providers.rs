//! TLS server names of VPN tunnels: a list shipped as data
//! (`vpnfp/data/vpn-providers.txt`) that users extend with their own file.

use std::{fs, path::Path};

use anyhow::{Context, bail};

const BUILT_IN: &str = include_str!("../../data/vpn-providers.txt");

/// Names (lowercase, without a trailing dot) and the protocol each means.
#[derive(Clone, Debug, Default)]
pub struct Providers {
    entries: Vec<(String, &'static str)>,
}

impl Providers {
    /// The built-in list.
    pub fn built_in() -> Self {
        let mut p = Self::default();
        p.add_text(BUILT_IN, "the built-in list")
            .expect("the built-in provider list parses");
        p
    }

    /// The built-in list plus a user's file.
    pub fn with_file(path: &Path) -> anyhow::Result<Self> {
        let mut p = Self::built_in();
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading the VPN name list {}", path.display()))?;
        p.add_text(&text, &path.display().to_string())?;
        Ok(p)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn add_text(&mut self, text: &str, origin: &str) -> anyhow::Result<()> {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(name), Some(protocol), None) = (words.next(), words.next(), words.next())
            else {
                bail!(
                    "{origin}, line {}: expected `<name> <protocol>`, got {line:?}",
                    n + 1
                );
            };
            let name = name
                .trim_end_matches('.')
                .trim_start_matches("*.")
                .to_ascii_lowercase();
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.');
            let valid_protocol = protocol
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
            if !valid_name || !valid_protocol || protocol.is_empty() {
                bail!(
                    "{origin}, line {}: {line:?}: names are DNS names, protocols lowercase snake_case",
                    n + 1
                );
            }
            // Protocol names live for the whole run and are few: leaking
            // them once gives every report a plain `&'static str`.
            let protocol: &'static str = Box::leak(protocol.to_string().into_boxed_str());
            self.entries.push((name, protocol));
        }
        Ok(())
    }

    /// The protocol a server name belongs to, the longest entry first.
    pub fn lookup(&self, server_name: &str) -> Option<&'static str> {
        let name = server_name.trim_end_matches('.').to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(entry, _)| {
                name == *entry
                    || (name.len() > entry.len()
                        && name.ends_with(entry.as_str())
                        && name.as_bytes()[name.len() - entry.len() - 1] == b'.')
            })
            .max_by_key(|(entry, _)| entry.len())
            .map(|(_, protocol)| *protocol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_match_on_label_boundaries() {
        let p = Providers::built_in();
        assert!(p.len() >= 5);
        assert_eq!(p.lookup("eu0.sec-tunnel.com"), Some("opera_vpn"));
        assert_eq!(p.lookup("X.VPNAZURE.NET."), Some("softether"));
        assert_eq!(p.lookup("notsec-tunnel.com"), None);
        assert_eq!(p.lookup("www.example.com"), None);
    }

    #[test]
    fn user_files_extend_and_errors_say_where() {
        let dir = std::env::temp_dir().join(format!("vpnfp-providers-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.txt");
        fs::write(&good, "# ours\nvpn.corp.example  anyconnect\n").unwrap();
        let p = Providers::with_file(&good).unwrap();
        assert_eq!(p.lookup("gw1.vpn.corp.example"), Some("anyconnect"));
        assert_eq!(p.lookup("eu0.sec-tunnel.com"), Some("opera_vpn"));
        let bad = dir.join("bad.txt");
        fs::write(&bad, "vpn.corp.example\n").unwrap();
        let e = format!("{:#}", Providers::with_file(&bad).unwrap_err());
        assert!(e.contains("bad.txt, line 1"), "{e}");
        fs::write(&bad, "vpn.corp.example Bad-Name\n").unwrap();
        assert!(Providers::with_file(&bad).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
