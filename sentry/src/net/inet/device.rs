//! The loopback device under the stack's `lo` interface: what smoltcp transmits is queued
//! and received again. The queue is the stack's, so it can look at a packet before smoltcp
//! takes it (listen backlogs: see `stack.rs`).
#![deny(unsafe_code)]

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use std::collections::VecDeque;

/// Linux's loopback MTU.
pub const LO_MTU: usize = 65536;

#[derive(Default)]
pub struct Loopback {
    pub queue: VecDeque<Vec<u8>>,
}

impl Device for Loopback {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        // An IPv4 packet's length field is 16 bits.
        caps.max_transmission_unit = LO_MTU - 1;
        caps.medium = Medium::Ip;
        // Nothing corrupts packets in memory: skip checksums, as Linux's lo does.
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let packet = self.queue.pop_front()?;
        Some((
            RxToken(packet),
            TxToken {
                queue: &mut self.queue,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            queue: &mut self.queue,
        })
    }
}

pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

pub struct TxToken<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0u8; len];
        let r = f(&mut packet);
        self.queue.push_back(packet);
        r
    }
}
