//! Replay mode: capture files through the userspace engine, each packet at
//! its own timestamp, several files as one stream.

use std::path::PathBuf;

use vpnfp_common::{KernelConfig, WindowClose};

use crate::{
    capture::{Capture, CaptureError},
    engine::Engine,
};

/// Replays `paths` in order. All files are opened first, so a missing one
/// fails before anything is read. The engine comes back in any case, with
/// what was read before an error.
pub fn replay_files(
    paths: &[PathBuf],
    config: KernelConfig,
    max_hosts: usize,
    mut on_close: impl FnMut(&WindowClose),
) -> (Engine, Result<(), CaptureError>) {
    let mut engine = Engine::with_capacity(config, max_hosts);
    let captures = match paths
        .iter()
        .map(|p| Capture::open(p))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(captures) => captures,
        Err(e) => return (engine, Err(e)),
    };
    for capture in captures {
        let result = capture.for_each(|packet| {
            if let Some(closed) = engine.frame(packet.link.parse(packet.data), packet.ts_ns) {
                on_close(&closed);
            }
        });
        if let Err(e) = result {
            return (engine, Err(e));
        }
    }
    (engine, Ok(()))
}
