//! The tools around vpnfp, apart from its tests: the benchmark
//! (`cargo xtask bench`) and, in `src/bin`, the lab, the demo, the fuzzer
//! and the corpus scorecard. They build on the tests crate's lab, harness
//! and frames.

pub mod bench;
