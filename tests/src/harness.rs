//! The real XDP program under BPF_PROG_TEST_RUN, with a scripted clock.

use aya::{
    maps::{MapData, RingBuf},
    programs::{TestRun, TestRunOptions},
};
use vpnfp::xdp::{Capacities, XdpFingerprinter};
use vpnfp_common::{Counters, KernelConfig, WindowClose, config::FLAG_TEST_CLOCK};

pub const XDP_PASS: u32 = 2;

pub struct TestProgram {
    pub fingerprinter: XdpFingerprinter,
    ring: RingBuf<MapData>,
    config: KernelConfig,
}

impl TestProgram {
    /// Loads the program embedded in the vpnfp crate with `config`; the
    /// clock is the one [`TestProgram::run_at`] sets.
    pub fn load(config: KernelConfig) -> Self {
        Self::load_with(config, Capacities::default())
    }

    pub fn load_with(mut config: KernelConfig, capacities: Capacities) -> Self {
        let mut fingerprinter = XdpFingerprinter::load(capacities, 0)
            .unwrap_or_else(|e| panic!("loading the XDP program: {e:#}"));
        config.flags |= FLAG_TEST_CLOCK;
        fingerprinter.configure(&config).expect("configure");
        let ring = fingerprinter.take_window_closes().expect("ring buffer");
        Self {
            fingerprinter,
            ring,
            config,
        }
    }

    /// Runs the program once on `frame` at time `now_ns`; returns the verdict,
    /// or the kernel's refusal (frames shorter than Ethernet never reach XDP).
    pub fn run_at(&mut self, frame: &[u8], now_ns: u64) -> std::io::Result<u32> {
        if self.config.test_clock_ns != now_ns {
            self.config.test_clock_ns = now_ns;
            self.fingerprinter
                .configure(&self.config)
                .expect("set the test clock");
        }
        let program = self.fingerprinter.program_mut().expect("program");
        let opts = TestRunOptions {
            data_in: Some(frame),
            ..TestRunOptions::default()
        };
        match program.test_run(opts) {
            Ok(result) => Ok(result.return_value),
            Err(aya::programs::ProgramError::SyscallError(e)) => Err(e.io_error),
            Err(e) => panic!("test_run: {e:#}"),
        }
    }

    pub fn counters(&self) -> Counters {
        self.fingerprinter.counters().expect("counters")
    }

    /// Every window-close record produced so far, in order.
    pub fn window_closes(&mut self) -> Vec<WindowClose> {
        let mut out = Vec::new();
        while let Some(item) = self.ring.next() {
            out.push(WindowClose::from_bytes(&item).expect("record size"));
        }
        out
    }
}
