//! The real kernel programs under BPF_PROG_TEST_RUN (XDP for ingress, TC
//! for egress), with a scripted clock, and what they send decoded as the
//! controller decodes it.

use std::net::IpAddr;

use aya::{
    maps::{MapData, RingBuf},
    programs::{TestRun, TestRunOptions},
};
use vpnfp::{
    model::{self, FlowEnded, FlowId},
    source::kernel::{Capacities, KernelFingerprinter},
};
use vpnfp_common::{
    Counters, KernelConfig, WindowClose,
    concentration::ConcentrationClose,
    config::FLAG_TEST_CLOCK,
    record::{FlowRecord, SampleRecord},
    user::Record,
};

pub const XDP_PASS: u32 = 2;
pub const TC_ACT_OK: u32 = 0;

/// Which program a frame is run through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// XDP: a frame arriving on the interface.
    Ingress,
    /// TC: a frame leaving it.
    Egress,
}

pub struct TestProgram {
    pub fingerprinter: KernelFingerprinter,
    events: RingBuf<MapData>,
    samples: RingBuf<MapData>,
    config: KernelConfig,
}

/// Everything the programs sent, decoded (times as the kernel stamped
/// them: the scripted clock).
#[derive(Debug, Default)]
pub struct Sent {
    pub windows: Vec<WindowClose<IpAddr>>,
    pub concentration: Vec<ConcentrationClose<IpAddr>>,
    pub closing: Vec<FlowRecord>,
    pub deltas: Vec<FlowRecord>,
    pub samples: Vec<SampleRecord>,
}

impl Sent {
    pub fn append(&mut self, mut more: Sent) {
        self.windows.append(&mut more.windows);
        self.concentration.append(&mut more.concentration);
        self.closing.append(&mut more.closing);
        self.deltas.append(&mut more.deltas);
        self.samples.append(&mut more.samples);
    }
}

impl TestProgram {
    /// Loads the programs embedded in the vpnfp crate with `config`; the
    /// clock is the one [`TestProgram::run_at`] sets.
    pub fn load(config: KernelConfig) -> Self {
        Self::load_with(config, Capacities::default())
    }

    pub fn load_with(mut config: KernelConfig, capacities: Capacities) -> Self {
        let mut fingerprinter = KernelFingerprinter::load(capacities, 0)
            .unwrap_or_else(|e| panic!("loading the eBPF programs: {e:#}"));
        config.flags |= FLAG_TEST_CLOCK;
        fingerprinter.configure(&config).expect("configure");
        let events = fingerprinter.take_events().expect("event ring");
        let samples = fingerprinter.take_samples().expect("sample ring");
        Self {
            fingerprinter,
            events,
            samples,
            config,
        }
    }

    pub fn config(&self) -> KernelConfig {
        self.config
    }

    /// Changes the config (the test clock stays on).
    pub fn reconfigure(&mut self, mut config: KernelConfig) {
        config.flags |= FLAG_TEST_CLOCK;
        config.test_clock_ns = self.config.test_clock_ns;
        self.config = config;
        self.fingerprinter.configure(&config).expect("configure");
    }

    /// Runs the XDP program once on `frame` at time `now_ns`; returns the
    /// verdict, or the kernel's refusal (frames shorter than Ethernet never
    /// reach XDP).
    pub fn run_at(&mut self, frame: &[u8], now_ns: u64) -> std::io::Result<u32> {
        self.run(Hook::Ingress, frame, now_ns)
    }

    /// Runs `frame` through the program of `hook` at `now_ns`.
    pub fn run(&mut self, hook: Hook, frame: &[u8], now_ns: u64) -> std::io::Result<u32> {
        if self.config.test_clock_ns != now_ns {
            self.config.test_clock_ns = now_ns;
            self.fingerprinter
                .configure(&self.config)
                .expect("set the test clock");
        }
        let opts = TestRunOptions {
            data_in: Some(frame),
            ..TestRunOptions::default()
        };
        let result = match hook {
            Hook::Ingress => self
                .fingerprinter
                .program_mut()
                .expect("XDP")
                .test_run(opts),
            Hook::Egress => self
                .fingerprinter
                .tc_program_mut()
                .expect("TC")
                .test_run(opts),
        };
        match result {
            Ok(result) => Ok(result.return_value),
            Err(aya::programs::ProgramError::SyscallError(e)) => Err(e.io_error),
            Err(e) => panic!("test_run: {e:#}"),
        }
    }

    /// A descriptor of the program of `hook`, for test runs from other
    /// threads (`vpnfp_tests::test_run_repeat`).
    pub fn program_fd(&mut self, hook: Hook) -> std::os::fd::OwnedFd {
        use std::os::fd::AsFd;
        let fd = match hook {
            Hook::Ingress => self.fingerprinter.program_mut().expect("XDP").fd(),
            Hook::Egress => self.fingerprinter.tc_program_mut().expect("TC").fd(),
        };
        fd.expect("a loaded program")
            .as_fd()
            .try_clone_to_owned()
            .expect("dup")
    }

    pub fn counters(&self) -> Counters {
        self.fingerprinter.counters().expect("counters")
    }

    /// Everything sent so far, in order, decoded by the controller's code.
    pub fn sent(&mut self) -> Sent {
        let mut sent = Sent::default();
        while let Some(item) = self.events.next() {
            match Record::parse(&item).expect("a well-formed event record") {
                Record::WindowClose(r) => sent.windows.push(model::window_from_record(&r, |t| t)),
                Record::Concentration(r) => sent
                    .concentration
                    .push(model::concentration_from_record(&r, |t| t)),
                Record::FlowClosing(r) => sent.closing.push(r),
                Record::FlowDelta(r) | Record::FlowIdle(r) => sent.deltas.push(r),
                Record::Sample(_) => panic!("a sample in the event ring"),
                Record::Owner(r) => panic!("{r:?}: a socket owner without --local"),
            }
        }
        while let Some(item) = self.samples.next() {
            match Record::parse(&item).expect("a well-formed sample record") {
                Record::Sample(r) => sent.samples.push(*r),
                other => panic!("{other:?} in the sample ring"),
            }
        }
        sent
    }

    /// Every window-close record produced so far, in order.
    pub fn window_closes(&mut self) -> Vec<WindowClose<IpAddr>> {
        self.sent().windows
    }

    /// Every flow still in the kernel's maps, as flow records (`exit`).
    pub fn flows(&self) -> Vec<FlowEnded> {
        let mut out: Vec<FlowEnded> = self
            .fingerprinter
            .flows4()
            .expect("flows4")
            .into_iter()
            .map(|(k, value)| FlowEnded {
                id: FlowId::of(&k),
                value,
                end: model::EndReason::Exit,
            })
            .chain(
                self.fingerprinter
                    .flows6()
                    .expect("flows6")
                    .into_iter()
                    .map(|(k, value)| FlowEnded {
                        id: FlowId::of(&k),
                        value,
                        end: model::EndReason::Exit,
                    }),
            )
            .collect();
        out.sort_by_key(|f| f.id);
        out
    }
}
