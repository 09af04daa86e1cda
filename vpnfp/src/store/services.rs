//! What each service costs: a flow's peer name mapped to a service and its
//! organisation (`vpnfp/data/services.txt`, extended by the user's file),
//! else to its registrable domain (the Public Suffix List, through the
//! `psl` crate), else the flow keeps its address; and per service the
//! statistics of its flows.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

const BUILT_IN: &str = include_str!("../../data/services.txt");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("line {line}: a rule before any [Service] section")]
    NoSection { line: usize },
    #[error("line {line}: a section is `[Service] Organisation`, got {text:?}")]
    BadSection { line: usize, text: String },
}

#[derive(Clone, Debug)]
enum Rule {
    /// The domain and every name under it.
    Domain(String),
    Full(String),
    Keyword(String),
}

#[derive(Clone, Debug)]
struct Section {
    service: String,
    organisation: Option<String>,
    rules: Vec<Rule>,
}

/// The service list (the user's sections first, then the built-in ones),
/// indexed: a name is looked up by its own suffixes, not against every
/// rule, so a full domain-list-community costs no more per flow than the
/// seed list.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// Service and organisation, per section.
    sections: Vec<(String, Option<String>)>,
    /// Rule text to its first section.
    full: HashMap<String, usize>,
    domains: HashMap<String, usize>,
    keywords: Vec<(String, usize)>,
}

/// What a peer name belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Service {
    pub name: String,
    pub organisation: Option<String>,
    /// How it was found: `list` (the service list), `domain` (the
    /// registrable domain), `address` (no name).
    pub by: &'static str,
}

fn parse(text: &str) -> Result<Vec<Section>, CatalogError> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some((service, organisation)) = rest.split_once(']') else {
                return Err(CatalogError::BadSection {
                    line: i + 1,
                    text: line.to_string(),
                });
            };
            let organisation = organisation.trim();
            sections.push(Section {
                service: service.trim().to_string(),
                organisation: (!organisation.is_empty()).then(|| organisation.to_string()),
                rules: Vec::new(),
            });
            continue;
        }
        let section = sections
            .last_mut()
            .ok_or(CatalogError::NoSection { line: i + 1 })?;
        let lower = line.to_ascii_lowercase();
        let rule = if let Some(full) = lower.strip_prefix("full:") {
            Rule::Full(full.to_string())
        } else if let Some(word) = lower.strip_prefix("keyword:") {
            Rule::Keyword(word.to_string())
        } else {
            Rule::Domain(lower.strip_prefix("domain:").unwrap_or(&lower).to_string())
        };
        section.rules.push(rule);
    }
    Ok(sections)
}

impl Catalog {
    fn index(sections: Vec<Section>) -> Self {
        let mut c = Self {
            sections: Vec::with_capacity(sections.len()),
            full: HashMap::new(),
            domains: HashMap::new(),
            keywords: Vec::new(),
        };
        for (i, section) in sections.into_iter().enumerate() {
            for rule in section.rules {
                // The earlier section keeps a rule both have.
                match rule {
                    Rule::Full(f) => {
                        c.full.entry(f).or_insert(i);
                    }
                    Rule::Domain(d) => {
                        c.domains.entry(d).or_insert(i);
                    }
                    Rule::Keyword(k) => c.keywords.push((k, i)),
                }
            }
            c.sections.push((section.service, section.organisation));
        }
        c
    }

    pub fn built_in() -> Self {
        Self::index(parse(BUILT_IN).expect("the built-in service list parses"))
    }

    /// The built-in list with `user`'s sections tried first.
    pub fn with_user(user: &str) -> Result<Self, CatalogError> {
        let mut sections = parse(user)?;
        sections.extend(parse(BUILT_IN).expect("the built-in service list parses"));
        Ok(Self::index(sections))
    }

    /// The section of the most specific rule `name` matches: its full
    /// name, else its longest listed domain, else the first keyword it
    /// contains.
    fn section_of(&self, name: &str) -> Option<usize> {
        if let Some(&i) = self.full.get(name) {
            return Some(i);
        }
        // The name itself, then each suffix after a dot, longest first.
        let suffixes =
            std::iter::once(name).chain(name.match_indices('.').map(|(at, _)| &name[at + 1..]));
        for suffix in suffixes {
            if let Some(&i) = self.domains.get(suffix) {
                return Some(i);
            }
        }
        self.keywords
            .iter()
            .filter(|(k, _)| name.contains(k.as_str()))
            .map(|&(_, i)| i)
            .min()
    }

    /// The service of a flow to `addr` whose peer is called `name`.
    pub fn service(&self, name: Option<&str>, addr: &str) -> Service {
        let Some(name) = name.map(|n| n.trim_end_matches('.').to_ascii_lowercase()) else {
            return Service {
                name: addr.to_string(),
                organisation: None,
                by: "address",
            };
        };
        if let Some(i) = self.section_of(&name) {
            let (service, organisation) = &self.sections[i];
            return Service {
                name: service.clone(),
                organisation: organisation.clone(),
                by: "list",
            };
        }
        let registrable = psl::domain_str(&name).unwrap_or(&name).to_string();
        Service {
            name: registrable,
            organisation: None,
            by: "domain",
        }
    }
}

/// One flow as the statistics need it.
#[derive(Clone, Debug)]
pub struct FlowRow {
    pub host: String,
    pub bytes_up: i64,
    pub bytes_down: i64,
    pub packets: i64,
    pub first_seen: f64,
    pub last_seen: f64,
    /// Through a VPN or tunnel protocol.
    pub tunnelled: bool,
}

/// p50, p90 and p99 by the nearest-rank method: the value at rank
/// ceil(q * n) of the sorted values (so always a value that occurred).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Quantiles {
    pub fn of(values: &mut [f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let rank = (q * values.len() as f64).ceil() as usize;
            values[rank.clamp(1, values.len()) - 1]
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
        }
    }
}

/// Flow sizes (bytes both ways) in bins: up to 1 kB, 4 kB, 16 kB, ...
/// 1 GB, and above.
pub const SIZE_BINS: [f64; 11] = [
    1e3,
    4e3,
    16e3,
    64e3,
    256e3,
    1.024e6,
    4.096e6,
    16.384e6,
    65.536e6,
    262.144e6,
    1.048_576e9,
];

#[derive(Clone, Debug, Serialize)]
pub struct HostShare {
    pub host: String,
    pub flows: i64,
    pub bytes: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceStats {
    pub service: String,
    pub organisation: Option<String>,
    pub by: &'static str,
    pub flows: i64,
    pub bytes_up: i64,
    pub bytes_down: i64,
    /// Of its bytes, those through a VPN or tunnel protocol.
    pub tunnelled_bytes: i64,
    /// Per flow: bytes both ways, seconds, packets both ways, and bytes up
    /// over bytes down (down 0 counts as 1).
    pub size: Quantiles,
    pub duration: Quantiles,
    pub packets: Quantiles,
    pub up_down_ratio: Quantiles,
    /// Flows per size bin ([`SIZE_BINS`]'s upper bounds, then the rest).
    pub size_histogram: Vec<i64>,
    /// Bytes per slot of the report's range.
    pub timeline: Vec<i64>,
    pub hosts: Vec<HostShare>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServicesReport {
    /// Of all bytes, the share on flows whose peer had a name.
    pub named_share: f64,
    pub bytes: i64,
    pub tunnelled_bytes: i64,
    /// Upper bounds of `size_histogram`'s bins (bytes); the last bin is
    /// everything above.
    pub size_bins: Vec<f64>,
    /// Largest first, at most [`MAX_SERVICES`]; `omitted` counts the rest.
    pub services: Vec<ServiceStats>,
    pub omitted: usize,
}

pub const MAX_SERVICES: usize = 40;

/// The statistics of `flows`, grouped by service; `slot_of` maps a time
/// to one of `slots` slots.
pub fn statistics(
    flows: impl IntoIterator<Item = (Service, FlowRow)>,
    slots: usize,
    slot_of: &dyn Fn(f64) -> usize,
) -> ServicesReport {
    let mut groups: HashMap<Service, Vec<FlowRow>> = HashMap::new();
    for (service, flow) in flows {
        groups.entry(service).or_default().push(flow);
    }
    let (mut bytes, mut named, mut tunnelled) = (0i64, 0i64, 0i64);
    let mut services: Vec<ServiceStats> = groups
        .into_iter()
        .map(|(service, rows)| {
            let total = |f: &FlowRow| f.bytes_up + f.bytes_down;
            let sum: i64 = rows.iter().map(total).sum();
            bytes += sum;
            if service.by != "address" {
                named += sum;
            }
            let through: i64 = rows.iter().filter(|f| f.tunnelled).map(total).sum();
            tunnelled += through;
            let mut histogram = vec![0i64; SIZE_BINS.len() + 1];
            let mut timeline = vec![0i64; slots];
            let mut hosts: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
            for f in &rows {
                let size = total(f) as f64;
                let bin = SIZE_BINS
                    .iter()
                    .position(|&b| size <= b)
                    .unwrap_or(SIZE_BINS.len());
                histogram[bin] += 1;
                if slots > 0 {
                    timeline[slot_of(f.last_seen).min(slots - 1)] += total(f);
                }
                let h = hosts.entry(f.host.as_str()).or_default();
                h.0 += 1;
                h.1 += total(f);
            }
            let mut hosts: Vec<HostShare> = hosts
                .into_iter()
                .map(|(host, (flows, bytes))| HostShare {
                    host: host.to_string(),
                    flows,
                    bytes,
                })
                .collect();
            hosts.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.host.cmp(&b.host)));
            let of = |f: &dyn Fn(&FlowRow) -> f64| {
                Quantiles::of(&mut rows.iter().map(f).collect::<Vec<f64>>())
            };
            ServiceStats {
                flows: rows.len() as i64,
                bytes_up: rows.iter().map(|f| f.bytes_up).sum(),
                bytes_down: rows.iter().map(|f| f.bytes_down).sum(),
                tunnelled_bytes: through,
                size: of(&|f| total(f) as f64),
                duration: of(&|f| (f.last_seen - f.first_seen).max(0.0)),
                packets: of(&|f| f.packets as f64),
                up_down_ratio: of(&|f| f.bytes_up as f64 / f.bytes_down.max(1) as f64),
                size_histogram: histogram,
                timeline,
                hosts,
                service: service.name,
                organisation: service.organisation,
                by: service.by,
            }
        })
        .collect();
    services.sort_by(|a, b| {
        (b.bytes_up + b.bytes_down)
            .cmp(&(a.bytes_up + a.bytes_down))
            .then(a.service.cmp(&b.service))
    });
    let omitted = services.len().saturating_sub(MAX_SERVICES);
    services.truncate(MAX_SERVICES);
    ServicesReport {
        named_share: if bytes > 0 {
            named as f64 / bytes as f64
        } else {
            0.0
        },
        bytes,
        tunnelled_bytes: tunnelled,
        size_bins: SIZE_BINS.to_vec(),
        services,
        omitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_services_domains_or_addresses() {
        let c = Catalog::built_in();
        let yt = c.service(Some("rr3---sn-4g5e6nz7.googlevideo.com"), "203.0.113.9");
        assert_eq!(
            (yt.name.as_str(), yt.organisation.as_deref(), yt.by),
            ("YouTube", Some("Google"), "list")
        );
        // The longer domain wins: youtubei.googleapis.com is YouTube's,
        // googleapis.com Google's.
        assert_eq!(
            c.service(Some("youtubei.googleapis.com"), "x").name,
            "YouTube"
        );
        assert_eq!(c.service(Some("www.googleapis.com"), "x").name, "Google");
        // Not a suffix on a label boundary.
        assert_ne!(c.service(Some("notyoutube.com"), "x").name, "YouTube");
        let other = c.service(Some("img.shop.example.co.uk"), "x");
        assert_eq!((other.name.as_str(), other.by), ("example.co.uk", "domain"));
        let none = c.service(None, "198.51.100.7");
        assert_eq!((none.name.as_str(), none.by), ("198.51.100.7", "address"));
    }

    #[test]
    fn the_users_list_comes_first() {
        let c = Catalog::with_user("[Intranet] Us\nlab.example\nfull:youtube.com\n").unwrap();
        assert_eq!(c.service(Some("www1.lab.example"), "x").name, "Intranet");
        assert_eq!(c.service(Some("youtube.com"), "x").name, "Intranet");
        assert!(matches!(
            Catalog::with_user("example.com\n"),
            Err(CatalogError::NoSection { line: 1 })
        ));
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            Quantiles::of(&mut v),
            Quantiles {
                p50: 50.0,
                p90: 90.0,
                p99: 99.0
            }
        );
        assert_eq!(Quantiles::of(&mut [7.0]).p99, 7.0);
        assert_eq!(Quantiles::of(&mut []), Quantiles::default());
    }
}
