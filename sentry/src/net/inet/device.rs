//! The device under the stack's interface: what smoltcp transmits is queued and received
//! again (loopback), unless it is for the network outside, which the link takes
//! (`--network=sandbox`, `packet.rs`). Packets from the link join the same queue. The
//! queue is the stack's, so it can look at a packet before smoltcp takes it (listen
//! backlogs: see `stack.rs`).
#![deny(unsafe_code)]

use super::packet::Wire;
use smoltcp::phy::{self, Checksum, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use std::collections::VecDeque;

/// Linux's loopback MTU.
pub const LO_MTU: usize = 65536;

#[derive(Default)]
pub struct Loopback {
    pub queue: VecDeque<Vec<u8>>,
    /// The link to the network namespace, with `--network=sandbox`.
    pub link: Option<Wire>,
    /// Packets and bytes looped back (`/proc/net/dev`'s `lo`, both ways).
    pub lo_count: (u64, u64),
}

impl Device for Loopback {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        match &self.link {
            // One interface for both: loopback connections use the link's MTU too, and
            // packets carry checksums the outside checks. Transport checksums are not
            // checked on the way in: a veth peer leaves them to "hardware"
            // (`CHECKSUM_PARTIAL`), and a packet socket sees them unfilled, as gVisor's
            // `RXChecksumOffload` assumes too.
            Some(w) => {
                caps.max_transmission_unit = w.mtu;
                caps.checksum.tcp = Checksum::Tx;
                caps.checksum.udp = Checksum::Tx;
                caps.checksum.icmpv4 = Checksum::Tx;
                caps.checksum.icmpv6 = Checksum::Tx;
            }
            None => {
                // An IPv4 packet's length field is 16 bits.
                caps.max_transmission_unit = LO_MTU - 1;
                // Nothing corrupts packets in memory: skip checksums, as Linux's lo does.
                caps.checksum = ChecksumCapabilities::ignored();
                // ICMP sockets see smoltcp's echo replies: give them a valid checksum,
                // which ping checks.
                caps.checksum.icmpv4 = Checksum::Tx;
            }
        }
        caps
    }

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let packet = self.queue.pop_front()?;
        Some((
            RxToken(packet),
            TxToken {
                queue: &mut self.queue,
                link: self.link.as_mut(),
                lo_count: &mut self.lo_count,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            queue: &mut self.queue,
            link: self.link.as_mut(),
            lo_count: &mut self.lo_count,
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
    link: Option<&'a mut Wire>,
    lo_count: &'a mut (u64, u64),
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0u8; len];
        let r = f(&mut packet);
        match self.link {
            Some(w) if !w.stays_local(&packet) => w.send(packet),
            _ => {
                self.lo_count.0 += 1;
                self.lo_count.1 += packet.len() as u64;
                self.queue.push_back(packet);
            }
        }
        r
    }
}
