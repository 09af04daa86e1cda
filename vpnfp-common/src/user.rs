//! Userspace-only glue: lets aya read and write the shared map values, and
//! decodes ring-buffer records by their header.

use crate::{
    Counters, FlowKey, FlowValue, HostEntry, KernelConfig, V6,
    record::{
        ConcentrationRecord, FlowRecord, RECORD_VERSION, RecordHeader, SampleRecord,
        WindowCloseRecord, kind,
    },
};

// SAFETY: all are #[repr(C)] plain integers; keys have no padding bytes, and
// values are only ever written whole (padding never read as data).
unsafe impl aya::Pod for KernelConfig {}
unsafe impl aya::Pod for HostEntry<u32> {}
unsafe impl aya::Pod for HostEntry<V6> {}
unsafe impl aya::Pod for V6 {}
unsafe impl aya::Pod for Counters {}
unsafe impl aya::Pod for FlowKey<u32> {}
unsafe impl aya::Pod for FlowKey<V6> {}
unsafe impl aya::Pod for FlowValue {}
unsafe impl aya::Pod for crate::block::PairKey<u32> {}
unsafe impl aya::Pod for crate::block::PairKey<V6> {}
unsafe impl aya::Pod for crate::block::BlockValue {}
unsafe impl aya::Pod for crate::local::Owner {}
unsafe impl aya::Pod for crate::local::LocalConfig {}
unsafe impl aya::Pod for crate::local::ProgramBlock {}

/// One decoded ring-buffer record.
#[derive(Clone, Debug)]
pub enum Record {
    WindowClose(WindowCloseRecord),
    Concentration(ConcentrationRecord),
    FlowClosing(FlowRecord),
    FlowDelta(FlowRecord),
    FlowIdle(FlowRecord),
    Sample(Box<SampleRecord>),
    Owner(crate::local::OwnerRecord),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("a ring-buffer record of {0} bytes is shorter than its header")]
    TooShort(usize),
    #[error("a ring-buffer record of unknown kind {0}: the program and the controller differ")]
    UnknownKind(u16),
    #[error(
        "a ring-buffer record of kind {kind} has version {version}, this vpnfp reads {RECORD_VERSION}: the program and the controller differ"
    )]
    Version { kind: u16, version: u16 },
    #[error("a ring-buffer record of kind {kind} has {len} bytes, {expected} expected")]
    Size {
        kind: u16,
        len: usize,
        expected: usize,
    },
}

fn read<T: Copy>(bytes: &[u8], kind: u16) -> Result<T, RecordError> {
    if bytes.len() != size_of::<T>() {
        return Err(RecordError::Size {
            kind,
            len: bytes.len(),
            expected: size_of::<T>(),
        });
    }
    // SAFETY: size checked; plain-integer records; unaligned read.
    Ok(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

impl Record {
    pub fn parse(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() < size_of::<RecordHeader>() {
            return Err(RecordError::TooShort(bytes.len()));
        }
        // SAFETY: length checked, header is plain integers.
        let header: RecordHeader =
            unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<RecordHeader>()) };
        if !(kind::WINDOW_CLOSE..=kind::OWNER).contains(&header.kind) {
            return Err(RecordError::UnknownKind(header.kind));
        }
        if header.version != RECORD_VERSION {
            return Err(RecordError::Version {
                kind: header.kind,
                version: header.version,
            });
        }
        Ok(match header.kind {
            kind::WINDOW_CLOSE => Record::WindowClose(read(bytes, header.kind)?),
            kind::CONCENTRATION => Record::Concentration(read(bytes, header.kind)?),
            kind::FLOW_CLOSING => Record::FlowClosing(read(bytes, header.kind)?),
            kind::FLOW_DELTA => Record::FlowDelta(read(bytes, header.kind)?),
            kind::FLOW_IDLE => Record::FlowIdle(read(bytes, header.kind)?),
            kind::OWNER => Record::Owner(read(bytes, header.kind)?),
            _ => Record::Sample(Box::new(read::<SampleRecord>(bytes, header.kind)?)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WindowClose;

    #[test]
    fn records_are_recognised_by_their_header() {
        let rec = WindowCloseRecord::of(&WindowClose::<u32> {
            host: 1,
            peer: 2,
            window_start_ns: 3,
            window_end_ns: 4,
            count_this: 5,
            count_prev: 6,
        });
        // SAFETY: plain integers.
        let bytes: [u8; size_of::<WindowCloseRecord>()] = unsafe { core::mem::transmute(rec) };
        match Record::parse(&bytes) {
            Ok(Record::WindowClose(r)) => assert_eq!(r, rec),
            other => panic!("{other:?}"),
        }
        let mut wrong = bytes;
        wrong[2] = 9;
        assert!(matches!(
            Record::parse(&wrong),
            Err(RecordError::Version { .. })
        ));
        let mut unknown = bytes;
        unknown[0] = 99;
        assert_eq!(
            Record::parse(&unknown).unwrap_err(),
            RecordError::UnknownKind(99)
        );
        assert!(matches!(
            Record::parse(&bytes[..40]),
            Err(RecordError::Size { .. })
        ));
        assert_eq!(
            Record::parse(&bytes[..4]).unwrap_err(),
            RecordError::TooShort(4)
        );
    }
}
