//! The data of a pipe: a ring of page-sized slots, as Linux keeps it (`pipe(7)`).
//!
//! Capacity is counted in slots, not bytes, because that is what applications can
//! observe: small writes are merged into the last page, so 65536 one-byte writes fill a
//! default pipe, but a packet-mode (`O_DIRECT`) write always takes a slot of its own, so
//! 16 one-byte packets do.

use crate::error::Result;
use crate::return_errno;
use std::collections::VecDeque;

/// Bytes per slot (the page size).
pub const PAGE_SIZE: usize = 4096;
/// Writes of at most this many bytes are atomic (`PIPE_BUF`).
pub const PIPE_BUF: usize = 4096;
/// Slots of a new pipe: 64 KiB.
pub const DEFAULT_SLOTS: usize = 16;

struct Slot {
    /// Bytes `[start..]` are unread; the slot may grow up to `PAGE_SIZE` by merging.
    data: Vec<u8>,
    start: usize,
    /// Written in packet mode: a read takes at most this one slot and drops its rest.
    packet: bool,
}

impl Slot {
    fn unread(&self) -> &[u8] {
        self.data.get(self.start..).unwrap_or_default()
    }
}

pub struct PipeBuffer {
    slots: VecDeque<Slot>,
    max_slots: usize,
    /// Unread bytes over all slots.
    len: usize,
}

impl Default for PipeBuffer {
    fn default() -> Self {
        PipeBuffer::new(DEFAULT_SLOTS)
    }
}

impl PipeBuffer {
    pub fn new(max_slots: usize) -> PipeBuffer {
        PipeBuffer {
            slots: VecDeque::new(),
            max_slots: max_slots.max(1),
            len: 0,
        }
    }

    /// Unread bytes (`FIONREAD`).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// No free slot: a write of any size would have to wait (`POLLOUT` is clear).
    pub fn is_full(&self) -> bool {
        self.slots.len() >= self.max_slots
    }

    /// The capacity in bytes (`F_GETPIPE_SZ`).
    pub fn capacity(&self) -> usize {
        self.max_slots * PAGE_SIZE
    }

    /// Resize to `slots` slots; `EBUSY` if the data does not fit in fewer (`F_SETPIPE_SZ`).
    pub fn set_slots(&mut self, slots: usize) -> Result<()> {
        if slots == 0 || slots < self.slots.len() {
            return_errno!(EBUSY);
        }
        self.max_slots = slots;
        Ok(())
    }

    /// Write what fits of `src` without waiting; returns the bytes taken. Writes of at
    /// most `PIPE_BUF` bytes are all or nothing; larger ones may be partial. `EAGAIN` if
    /// nothing could be written. `packet` starts a new slot for each page of `src`.
    pub fn write(&mut self, src: &[u8], packet: bool) -> Result<usize> {
        if src.is_empty() {
            return Ok(0);
        }
        let mut done = 0usize;
        // As Linux's pipe_write: the part that is not a whole page merges into the last
        // slot if all of it fits there.
        let head = src.len() % PAGE_SIZE;
        if head != 0 && !packet {
            if let Some(last) = self.slots.back_mut() {
                if !last.packet && last.data.len() + head <= PAGE_SIZE {
                    last.data
                        .extend_from_slice(src.get(..head).unwrap_or_default());
                    done = head;
                }
            }
        }
        while done < src.len() && !self.is_full() {
            let n = (src.len() - done).min(PAGE_SIZE);
            let piece = src.get(done..done + n).unwrap_or_default();
            self.slots.push_back(Slot {
                data: piece.to_vec(),
                start: 0,
                packet,
            });
            done += n;
        }
        // Only a write larger than PIPE_BUF can be cut short, and this one was not: the
        // loop above either took all of it or, with no merge and no free slot, nothing.
        self.len += done;
        if done == 0 {
            return_errno!(EAGAIN);
        }
        Ok(done)
    }

    /// Read into `dst` without waiting; 0 if the buffer is empty. A read stops after the
    /// first packet it meets, dropping the part of the packet that did not fit.
    pub fn read(&mut self, dst: &mut [u8]) -> usize {
        let mut done = 0usize;
        while done < dst.len() {
            let Some(slot) = self.slots.front_mut() else {
                break;
            };
            let avail = slot.unread();
            let n = avail.len().min(dst.len() - done);
            if let (Some(to), Some(from)) = (dst.get_mut(done..done + n), avail.get(..n)) {
                to.copy_from_slice(from);
            }
            done += n;
            let packet = slot.packet;
            let consumed = if packet { avail.len() } else { n };
            slot.start += consumed;
            self.len -= consumed;
            if slot.start >= slot.data.len() {
                self.slots.pop_front();
            }
            if packet {
                break;
            }
        }
        done
    }

    /// Bytes a write is sure to take now: the free slots, whole (merging into the last
    /// slot may take a little more).
    pub fn free_bytes(&self) -> usize {
        self.max_slots.saturating_sub(self.slots.len()) * PAGE_SIZE
    }

    /// Copy up to `dst.len()` unread bytes into `dst` without consuming them (`tee`,
    /// and `splice` before it knows how much its destination took).
    pub fn peek(&self, dst: &mut [u8]) -> usize {
        let mut done = 0usize;
        for slot in &self.slots {
            if done >= dst.len() {
                break;
            }
            let avail = slot.unread();
            let n = avail.len().min(dst.len() - done);
            if let (Some(to), Some(from)) = (dst.get_mut(done..done + n), avail.get(..n)) {
                to.copy_from_slice(from);
            }
            done += n;
        }
        done
    }

    /// Drop the first `n` unread bytes (at most what there is).
    pub fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(slot) = self.slots.front_mut() else {
                break;
            };
            let take = slot.unread().len().min(n);
            slot.start += take;
            self.len -= take;
            n -= take;
            if slot.start >= slot.data.len() {
                self.slots.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_writes_merge_into_one_slot() {
        let mut b = PipeBuffer::default();
        for _ in 0..65536 {
            assert_eq!(b.write(b"x", false).ok(), Some(1));
        }
        assert!(b.is_full());
        assert_eq!(b.len(), 65536);
        assert_eq!(
            b.write(b"x", false).map_err(|e| e.errno),
            Err(crate::Errno::EAGAIN)
        );
        let mut out = vec![0u8; 70000];
        assert_eq!(b.read(&mut out), 65536);
        assert!(b.is_empty() && !b.is_full());
    }

    #[test]
    fn packets_take_a_slot_each_and_are_read_one_at_a_time() {
        let mut b = PipeBuffer::new(2);
        assert_eq!(b.write(b"abc", true).ok(), Some(3));
        assert_eq!(b.write(b"defg", true).ok(), Some(4));
        assert!(b.write(b"h", true).is_err());
        let mut out = [0u8; 2];
        // A short read drops the rest of the packet.
        assert_eq!(b.read(&mut out), 2);
        assert_eq!(&out, b"ab");
        let mut out = [0u8; 16];
        assert_eq!(b.read(&mut out), 4);
        assert_eq!(out.get(..4), Some(&b"defg"[..]));
        assert_eq!(b.read(&mut out), 0);
    }

    #[test]
    fn atomic_writes_are_all_or_nothing() {
        let mut b = PipeBuffer::new(1);
        assert_eq!(b.write(&[1u8; 4000], false).ok(), Some(4000));
        // 200 bytes do not fit in the last page and there is no free slot.
        assert!(b.write(&[2u8; 200], false).is_err());
        assert_eq!(b.write(&[2u8; 96], false).ok(), Some(96));
        assert_eq!(b.len(), 4096);
    }

    #[test]
    fn large_writes_are_partial() {
        let mut b = PipeBuffer::new(2);
        assert_eq!(b.write(&[7u8; 10000], false).ok(), Some(8192));
        let mut out = vec![0u8; 5000];
        assert_eq!(b.read(&mut out), 5000);
        // One slot is free again: a large write takes one more page.
        assert_eq!(b.write(&[7u8; 10000], false).ok(), Some(4096));
        assert_eq!(b.len(), 8192 - 5000 + 4096);
    }

    #[test]
    fn shrinking_below_the_data_is_refused() {
        let mut b = PipeBuffer::new(4);
        assert_eq!(b.write(&[0u8; 3 * 4096], false).ok(), Some(3 * 4096));
        assert!(b.set_slots(2).is_err());
        assert!(b.set_slots(3).is_ok());
        assert_eq!(b.capacity(), 3 * 4096);
        assert!(b.is_full());
    }

    #[test]
    fn mixed_reads_stop_at_a_packet() {
        let mut b = PipeBuffer::new(4);
        assert_eq!(b.write(b"plain", false).ok(), Some(5));
        assert_eq!(b.write(b"pkt", true).ok(), Some(3));
        assert_eq!(b.write(b"more", false).ok(), Some(4));
        let mut out = [0u8; 64];
        assert_eq!(b.read(&mut out), 8);
        assert_eq!(out.get(..8), Some(&b"plainpkt"[..]));
        assert_eq!(b.read(&mut out), 4);
    }
}
