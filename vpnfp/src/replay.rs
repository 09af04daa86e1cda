//! Replay mode: capture files through the userspace engine, each packet at
//! its own timestamp, several files as one stream. Each file is opened when
//! its turn comes (a list longer than the open-file limit is fine); a file
//! that fails is reported with its offset and the replay goes on with the
//! next one.

use std::path::PathBuf;

use vpnfp_common::config::Arrival;

use crate::{
    engine::Engine,
    model::Fact,
    source::capture::{Capture, CaptureError},
};

/// Replays `paths` in order through `engine`, then ends every flow (`exit`).
/// Returns the files that failed (each after what it held before the
/// failure was replayed).
pub fn replay_files(
    paths: &[PathBuf],
    engine: &mut Engine,
    mut on_fact: impl FnMut(Fact<'_>),
    mut on_error: impl FnMut(&CaptureError),
) -> Vec<CaptureError> {
    let mut errors = Vec::new();
    for path in paths {
        let result = Capture::open(path).and_then(|capture| {
            capture.for_each(|packet| {
                // The kernel programs' parse, and what provider links wrap.
                let parsed = packet.link.parse_capture(packet.data);
                // A capture does not say where a frame entered: nothing is taken as spoofed.
                engine.frame(
                    packet.data,
                    parsed,
                    Arrival::Elsewhere,
                    packet.ts_ns,
                    &mut on_fact,
                );
            })
        });
        if let Err(e) = result {
            on_error(&e);
            errors.push(e);
        }
    }
    engine.finish(&mut on_fact);
    errors
}
