//! The benchmark in miniature, so it cannot rot: every part runs end to end
//! (real program, real veths, real captures) and yields sane figures. The
//! numbers themselves are `cargo xtask bench`'s business, not a test's.

use vpnfp_tests::privileged;
use vpnfp_tools::bench::{self, PARTS, Size};

#[test]
fn every_bench_part_runs_and_yields_sane_figures() {
    if !privileged("every_bench_part_runs_and_yields_sane_figures") {
        return;
    }
    let scratch = std::env::temp_dir().join(format!("vpnfp-bench-smoke-{}", std::process::id()));
    let start = std::time::Instant::now();
    let figures = bench::run(Size::Smoke, &PARTS, &scratch, |part| {
        eprintln!("bench smoke: {part} from {:?}", start.elapsed())
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
    for expected in [
        "XDP added cost: IPv4 UDP, one host",
        bench::cost::ONE_HOST_OVER_FLOOR,
        "XDP added cost: non-IP (ARP)",
        "veth receive rate, no program",
        "veth receive rate, vpnfp XDP",
        "XDP packets missed by the fingerprinter",
        "NFQUEUE highest rate with 0 missed",
        "replay throughput",
        "tcpdump -r FILE -w /dev/null",
        "kernel bytes per tracked host",
        "host evictions at 2x capacity",
    ] {
        assert!(names.contains(&expected), "missing {expected}: {names:?}");
    }
    for f in &figures {
        assert!(f.value.is_finite() && f.value >= 0.0, "{f:?}");
    }
    let value = |name: &str| figures.iter().find(|f| f.name == name).unwrap().value;
    assert!(value("veth receive rate, vpnfp XDP") > 0.0);
    assert!(value("replay throughput") > 0.0);
    assert!(value("NFQUEUE highest rate with 0 missed") > 0.0);
    // Correctness, not speed: the fingerprinter saw every frame, and every
    // eviction was counted.
    assert_eq!(value("XDP packets missed by the fingerprinter"), 0.0);
    let evictions = figures
        .iter()
        .find(|f| f.name == "host evictions at 2x capacity")
        .unwrap();
    assert!(
        evictions
            .target
            .as_deref()
            .is_some_and(|t| t.ends_with("met")),
        "{evictions:?}"
    );
    // The regression guard `bench --smoke` applies, on the same figures.
    let baseline = bench::Baseline::read(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/baseline.json"),
    )
    .expect("bench/baseline.json");
    match bench::guard(&figures, &baseline) {
        Ok(said) => eprintln!("{said}"),
        Err(why) => panic!("{why}"),
    }
    let table = bench::table(&figures);
    assert_eq!(table.lines().count(), figures.len() + 2);
    let json: Vec<serde_json::Value> = figures.iter().map(|f| f.json()).collect();
    for j in &json {
        for key in ["name", "value", "unit", "baseline", "ratio", "conditions"] {
            assert!(j.get(key).is_some(), "{key} in {j}");
        }
    }
}
