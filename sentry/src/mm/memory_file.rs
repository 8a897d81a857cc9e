//! The MemoryFile: one memfd per sandbox holding all application memory.
//!
//! The file is sparse: frames cost host memory only once touched, and freed frames are
//! punched out (but for a few kept for the next copies). The sentry maps the whole file
//! once and reads or writes application memory through that mapping; stubs map ranges of
//! it where the application sees them.

use super::file_cache::FileCaches;
use crate::errno;
use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

pub const PAGE_SIZE: u64 = 4096;

/// Size of the file's address range. Sparse, so this only bounds how much memory the
/// sandbox can hold at once.
const FILE_SIZE: u64 = 64 << 30;

/// A range of MemoryFile pages, reference counted so that `fork` can share frames
/// copy-on-write.
struct Allocator {
    /// First never-used offset.
    bump: u64,
    /// Freed frames, as runs (first offset → pages), joined with their neighbours: they
    /// were punched, so they read as zeros. Without reuse of runs, the offsets would run
    /// out however little memory is in use (a process that maps, touches and unmaps 1 MiB
    /// in a loop did after 65536 rounds).
    free: std::collections::BTreeMap<u64, u64>,
    /// Reference count per frame, and which hold data.
    frames: Frames,
    /// Freed frames kept as they are, not punched, as runs (first offset → pages), at
    /// most [`DIRTY_MAX`] pages in all: only for [`MemoryFile::allocate_to_overwrite`].
    dirty: std::collections::BTreeMap<u64, u64>,
    dirty_pages: u64,
    /// [`DIRTY_MAX`] (tests of the free runs alone set 0).
    dirty_max: u64,
}

/// What the allocator knows of each frame, indexed by frame number. Frames are handed out
/// from the bottom of the file, so the table is as long as the most memory the sandbox
/// has held at once (4 bytes a page); a fork looks up every page it shares or copies,
/// which hashing made a tenth of a fork's time in the sentry.
#[derive(Default)]
struct Frames {
    /// Reference count (0: not live) and [`Frames::DATA`].
    state: Vec<u32>,
    /// Frames with a reference count.
    live: u64,
}

impl Frames {
    /// A live frame [`MemoryFile::holds_data`] found holding data: it does until freed
    /// (only the sentry punches), so it needs no query again.
    const DATA: u32 = 1 << 31;
    const COUNT: u32 = !Self::DATA;

    fn index(off: u64) -> usize {
        usize::try_from(off / PAGE_SIZE).unwrap_or(usize::MAX)
    }

    fn get(&self, off: u64) -> u32 {
        self.state.get(Self::index(off)).copied().unwrap_or(0)
    }

    fn slot(&mut self, off: u64) -> Option<&mut u32> {
        let i = Self::index(off);
        if i >= self.state.len() {
            // Offsets are below FILE_SIZE, so the table stays bounded.
            if off >= FILE_SIZE {
                return None;
            }
            self.state.resize(i + 1, 0);
        }
        self.state.get_mut(i)
    }

    fn refs(&self, off: u64) -> u32 {
        self.get(off) & Self::COUNT
    }

    /// A frame just allocated: one reference, no data known.
    fn set_new(&mut self, off: u64) {
        if let Some(s) = self.slot(off) {
            let was_live = *s & Self::COUNT != 0;
            *s = 1;
            if !was_live {
                self.live += 1;
            }
        }
    }

    fn inc(&mut self, off: u64) {
        if let Some(s) = self.slot(off) {
            let n = *s & Self::COUNT;
            if n < Self::COUNT {
                *s = (*s & Self::DATA) | (n + 1);
            }
            if n == 0 {
                self.live += 1;
            }
        }
    }

    /// Drop a reference; true if it was the last.
    fn dec(&mut self, off: u64) -> bool {
        let Some(s) = self.state.get_mut(Self::index(off)) else {
            return false;
        };
        match *s & Self::COUNT {
            0 => false,
            1 => {
                *s = 0;
                self.live = self.live.saturating_sub(1);
                true
            }
            n => {
                *s = (*s & Self::DATA) | (n - 1);
                false
            }
        }
    }

    fn holds_data(&self, off: u64) -> bool {
        self.get(off) & Self::DATA != 0
    }

    /// Remember that a live frame holds data.
    fn mark_data(&mut self, off: u64) {
        if let Some(s) = self.state.get_mut(Self::index(off)) {
            if *s & Self::COUNT != 0 {
                *s |= Self::DATA;
            }
        }
    }
}

/// How many freed pages may stay unpunched, for copies (see
/// [`MemoryFile::allocate_to_overwrite`]): a forked child's copies, given back when it
/// exits, serve the next fork's.
const DIRTY_MAX: u64 = 64;

impl Allocator {
    /// Add a freed frame to the free runs, joined with its neighbours; a run that ends
    /// at the never-used offsets joins those instead.
    fn give_back(&mut self, off: u64) {
        let mut start = off;
        let mut n = 1;
        if let Some((&s, &k)) = self.free.range(..off).next_back() {
            if s + k * PAGE_SIZE == off {
                self.free.remove(&s);
                start = s;
                n += k;
            }
        }
        if let Some(k) = self.free.remove(&(off + PAGE_SIZE)) {
            n += k;
        }
        if start + n * PAGE_SIZE == self.bump {
            self.bump = start;
        } else {
            self.free.insert(start, n);
        }
    }
}

pub struct MemoryFile {
    fd: OwnedFd,
    base: *mut u8,
    alloc: Mutex<Allocator>,
    file_caches: FileCaches,
}

// SAFETY: `base` points at a shared mapping that lives as long as the MemoryFile; all
// access through it goes through `with_slice`/`read`/`write`, which bound-check offsets.
// Concurrent access to the same bytes mirrors what the application's threads do to their
// own memory and is the application's business, exactly as on Linux.
unsafe impl Send for MemoryFile {}
// SAFETY: see `Send` above.
unsafe impl Sync for MemoryFile {}

impl MemoryFile {
    pub fn new() -> Result<MemoryFile> {
        let fd = nix::sys::memfd::memfd_create(
            c"carapace-memory",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )?;
        nix::unistd::ftruncate(&fd, FILE_SIZE as i64)?;
        // SAFETY: mapping a fresh memfd we own at a kernel-chosen address; the mapping is
        // never unmapped while `self` lives (Drop unmaps it).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::last_os_error());
        }
        Ok(MemoryFile {
            fd,
            base: base.cast(),
            alloc: Mutex::new(Allocator {
                bump: 0,
                free: std::collections::BTreeMap::new(),
                frames: Frames::default(),
                dirty: std::collections::BTreeMap::new(),
                dirty_pages: 0,
                dirty_max: DIRTY_MAX,
            }),
            file_caches: FileCaches::new(),
        })
    }

    /// The caches of unchanging files' pages kept here.
    pub fn file_caches(&self) -> &FileCaches {
        &self.file_caches
    }

    /// The memfd, for platforms that map it into stubs.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    fn allocator(&self) -> std::sync::MutexGuard<'_, Allocator> {
        self.alloc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Allocate `pages` contiguous zeroed frames; returns the file offset of the first.
    pub fn allocate(&self, pages: u64) -> Result<u64> {
        let mut a = self.allocator();
        let len = pages.checked_mul(PAGE_SIZE).ok_or(errno!(ENOMEM))?;
        if pages == 0 {
            return Err(errno!(EINVAL));
        }
        // The first freed run that fits among the lowest few; past the end of the used
        // offsets only when none does; any run at all once those are gone.
        let fit = |a: &Allocator, look: usize| {
            a.free
                .iter()
                .take(look)
                .find(|(_, n)| **n >= pages)
                .map(|(s, n)| (*s, *n))
        };
        let end = a.bump.checked_add(len).ok_or(errno!(ENOMEM))?;
        let run = match fit(&a, 64) {
            Some(r) => Some(r),
            None if end <= FILE_SIZE => None,
            None => Some(fit(&a, usize::MAX).ok_or(errno!(ENOMEM, "MemoryFile exhausted"))?),
        };
        let off = match run {
            Some((start, n)) => {
                a.free.remove(&start);
                if n > pages {
                    a.free.insert(start + len, n - pages);
                }
                start
            }
            None => {
                let off = a.bump;
                a.bump = end;
                off
            }
        };
        for i in 0..pages {
            a.frames.set_new(off + i * PAGE_SIZE);
        }
        Ok(off)
    }

    /// Allocate `pages` contiguous frames that the caller overwrites whole before anyone
    /// reads them: frames freed lately, still in host memory and in the sentry's page
    /// tables, if a run of them fits (a copy into them takes no page fault and no host
    /// allocation, a third of the cost of a `fork`'s copies here); else fresh ones.
    /// Also returns whether they are such frames (a part not overwritten must be zeroed).
    pub fn allocate_to_overwrite(&self, pages: u64) -> Result<(u64, bool)> {
        {
            let mut a = self.allocator();
            let fit = a
                .dirty
                .iter()
                .find(|(_, n)| **n >= pages)
                .map(|(s, n)| (*s, *n));
            if let (Some((start, n)), Some(len)) = (fit, pages.checked_mul(PAGE_SIZE)) {
                if pages > 0 {
                    a.dirty.remove(&start);
                    if n > pages {
                        a.dirty.insert(start + len, n - pages);
                    }
                    a.dirty_pages -= pages;
                    for i in 0..pages {
                        a.frames.set_new(start + i * PAGE_SIZE);
                    }
                    return Ok((start, true));
                }
            }
        }
        Ok((self.allocate(pages)?, false))
    }

    /// Take another reference to a frame (a fork sharing it copy-on-write).
    pub fn inc_ref(&self, off: u64) {
        self.inc_refs([off]);
    }

    /// Take another reference to each frame, under one lock.
    pub fn inc_refs(&self, frames: impl IntoIterator<Item = u64>) {
        let mut a = self.allocator();
        for off in frames {
            a.frames.inc(off);
        }
    }

    /// How many address spaces hold this frame.
    pub fn ref_count(&self, off: u64) -> u32 {
        self.allocator().frames.refs(off)
    }

    /// Drop a reference; the last one returns the frame's host memory and recycles it.
    pub fn dec_ref(&self, off: u64) {
        self.dec_refs([off]);
    }

    /// Drop a reference to each frame; the ones no longer held are given back, each run
    /// of contiguous frames with one punch (a munmap frees hundreds at once).
    pub fn dec_refs(&self, frames: impl IntoIterator<Item = u64>) {
        let mut a = self.allocator();
        let mut gone: Vec<u64> = frames
            .into_iter()
            .filter(|off| a.frames.dec(*off))
            .collect();
        gone.sort_unstable();
        let mut i = 0;
        while let Some(&start) = gone.get(i) {
            let mut n = 1;
            while gone.get(i + n) == Some(&(start + n as u64 * PAGE_SIZE)) {
                n += 1;
            }
            i += n;
            let pages = n as u64;
            if a.dirty_pages + pages <= a.dirty_max {
                a.dirty.insert(start, pages);
                a.dirty_pages += pages;
                continue;
            }
            // Punching returns the pages to the host and makes them read back as zeros,
            // so recycled frames are already clean.
            let _ = nix::fcntl::fallocate(
                &self.fd,
                nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                    | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
                start as i64,
                (n as u64 * PAGE_SIZE) as i64,
            );
            for k in 0..n {
                a.give_back(start + k as u64 * PAGE_SIZE);
            }
        }
    }

    /// The sentry's view of `len` bytes at file offset `off`.
    fn ptr(&self, off: u64, len: usize) -> Result<*mut u8> {
        let end = off.checked_add(len as u64).ok_or(errno!(EFAULT))?;
        if end > FILE_SIZE {
            return Err(errno!(EFAULT));
        }
        // SAFETY: `off + len` is within the mapping, checked above.
        Ok(unsafe { self.base.add(off as usize) })
    }

    /// Copy bytes out of the file.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        let p = self.ptr(off, buf.len())?;
        // SAFETY: `p..p+len` lies in our live shared mapping (checked by `ptr`), and `buf`
        // is a distinct sentry buffer, so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copy bytes into the file.
    pub fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        let p = self.ptr(off, data.len())?;
        // SAFETY: as in `read`, with the direction reversed.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// Atomically replace the 32-bit word at `off` with `f(old)`; returns the old value.
    /// Application threads touch the same word concurrently through their own mappings,
    /// so this is a compare-and-swap loop, as Linux's futex operations do.
    pub fn atomic_update_u32(&self, off: u64, f: impl Fn(u32) -> u32) -> Result<u32> {
        if !off.is_multiple_of(4) {
            return Err(errno!(EINVAL));
        }
        let p = self.ptr(off, 4)?;
        // SAFETY: `p` is 4-byte aligned and inside our live shared mapping (checked by
        // `ptr`); AtomicU32 has the same layout as u32, and every access here is atomic.
        let word = unsafe { &*(p as *const std::sync::atomic::AtomicU32) };
        let mut cur = word.load(std::sync::atomic::Ordering::SeqCst);
        loop {
            match word.compare_exchange(
                cur,
                f(cur),
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            ) {
                Ok(old) => return Ok(old),
                Err(now) => cur = now,
            }
        }
    }

    /// Atomically replace the bytes `old` at `off` with `new` (syscall patching: other
    /// threads may be running that code). They must lie in one aligned 16-byte block (one
    /// locked compare-and-swap, which the CPU's instruction fetch, in aligned 16-byte
    /// blocks, sees whole); `EAGAIN` if the bytes there are not `old`.
    pub fn replace_bytes(&self, off: u64, old: &[u8], new: &[u8]) -> Result<()> {
        let block_off = off & !15;
        let at = (off - block_off) as usize;
        let end = at.checked_add(old.len()).ok_or(errno!(EINVAL))?;
        if old.len() != new.len() || end > 16 {
            return Err(errno!(EINVAL));
        }
        let p = self.ptr(block_off, 16)?;
        let mut buf = [0u8; 16];
        // SAFETY: `p..p+16` lies in our live shared mapping (checked by `ptr`); a torn
        // read here only makes the compare-and-swap below fail and retry.
        unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), 16) };
        let mut cur = u128::from_le_bytes(buf);
        loop {
            let mut bytes = cur.to_le_bytes();
            if bytes.get(at..end) != Some(old) {
                return Err(errno!(EAGAIN, "code changed under the patch"));
            }
            if let Some(dst) = bytes.get_mut(at..end) {
                dst.copy_from_slice(new);
            }
            // SAFETY: `p` is 16-byte aligned (the mapping is page aligned, `block_off` a
            // multiple of 16) and inside our live shared mapping.
            let seen = unsafe { cas16(p.cast(), cur, u128::from_le_bytes(bytes)) };
            if seen == cur {
                return Ok(());
            }
            cur = seen;
        }
    }

    /// Which of the `pages` frames from `off` hold data: a frame never written (or given
    /// back) is a hole and reads as zeros, so a copy of it is just a fresh frame.
    pub fn holds_data(&self, off: u64, pages: u64) -> Result<Vec<bool>> {
        let len = pages.checked_mul(PAGE_SIZE).ok_or(errno!(EINVAL))?;
        let end = off.checked_add(len).ok_or(errno!(EINVAL))?;
        let mut out: Vec<bool> = {
            let a = self.allocator();
            (0..pages)
                .map(|i| a.frames.holds_data(off + i * PAGE_SIZE))
                .collect()
        };
        // Only the frames not known to hold data are asked about, each run of them with
        // a `SEEK_DATA` per data frame found in it (never `SEEK_HOLE`: it scans on past
        // the run through all the data that follows, which is most of the file's).
        let mut found = Vec::new();
        let mut at = off;
        while at < end {
            let i = ((at - off) / PAGE_SIZE) as usize;
            if out.get(i).copied().unwrap_or(true) {
                at += PAGE_SIZE;
                continue;
            }
            // The end of this run of unknown frames.
            let mut stop = at;
            while stop < end
                && !out
                    .get(((stop - off) / PAGE_SIZE) as usize)
                    .copied()
                    .unwrap_or(true)
            {
                stop += PAGE_SIZE;
            }
            let data = match nix::unistd::lseek(&self.fd, at as i64, nix::unistd::Whence::SeekData)
            {
                Ok(d) => d as u64 & !(PAGE_SIZE - 1),
                // No data at or after `at`.
                Err(nix::errno::Errno::ENXIO) => break,
                Err(e) => return Err(e.into()),
            };
            if data >= stop {
                at = stop;
                continue;
            }
            if let Some(slot) = out.get_mut(((data.max(at) - off) / PAGE_SIZE) as usize) {
                *slot = true;
            }
            found.push(data.max(at));
            at = data.max(at) + PAGE_SIZE;
        }
        if !found.is_empty() {
            let mut a = self.allocator();
            for f in found {
                // Only a frame still live: one freed meanwhile is a hole again.
                a.frames.mark_data(f);
            }
        }
        Ok(out)
    }

    /// Copy one frame to another (copy-on-write, private file pages).
    pub fn copy_frame(&self, from: u64, to: u64) -> Result<()> {
        let src = self.ptr(from, PAGE_SIZE as usize)?;
        let dst = self.ptr(to, PAGE_SIZE as usize)?;
        if from == to {
            return Ok(());
        }
        // SAFETY: both frames lie in the mapping and are distinct pages, so they do not
        // overlap.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, PAGE_SIZE as usize) };
        Ok(())
    }

    /// Fill a frame with zeros.
    pub fn zero_frame(&self, off: u64) -> Result<()> {
        let p = self.ptr(off, PAGE_SIZE as usize)?;
        // SAFETY: the frame lies in the mapping (checked by `ptr`); it is the caller's,
        // not yet mapped into any stub.
        unsafe { std::ptr::write_bytes(p, 0, PAGE_SIZE as usize) };
        Ok(())
    }

    /// Fill `pages` fresh frames from `off` through a closure that writes into the
    /// sentry's view of them (a host `pread` straight into application memory).
    pub fn fill_frames(
        &self,
        off: u64,
        pages: u64,
        f: impl FnOnce(&mut [u8]) -> Result<()>,
    ) -> Result<()> {
        let len = usize::try_from(pages.checked_mul(PAGE_SIZE).ok_or(errno!(EFAULT))?)
            .map_err(|_| errno!(EFAULT))?;
        let p = self.ptr(off, len)?;
        // SAFETY: the frames lie in the mapping (checked by `ptr`); the caller allocated
        // them and has not mapped them into any stub or shared them yet, so nothing else
        // reads or writes them while the slice lives.
        let frames = unsafe { std::slice::from_raw_parts_mut(p, len) };
        f(frames)
    }

    /// Bytes of host memory the file holds (for `sysinfo` and benchmarks).
    pub fn allocated_bytes(&self) -> u64 {
        let a = self.allocator();
        a.frames.live.saturating_mul(PAGE_SIZE)
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`; no references outlive self.
        unsafe {
            libc::munmap(self.base.cast(), FILE_SIZE as usize);
        }
    }
}

/// `lock cmpxchg16b`: replace the 16 bytes at `p` with `new` if they are `old`; returns
/// what was there.
///
/// # Safety
/// `p` must be valid for reads and writes of 16 bytes and 16-byte aligned.
unsafe fn cas16(p: *mut u128, old: u128, new: u128) -> u128 {
    let mut lo = old as u64;
    let mut hi = (old >> 64) as u64;
    // SAFETY: the caller vouches for `p`. rbx cannot be named as an operand (LLVM keeps
    // it), so the new low half is swapped into it around the instruction and back.
    unsafe {
        std::arch::asm!(
            "xchg {nlo}, rbx",
            "lock cmpxchg16b xmmword ptr [{p}]",
            "mov rbx, {nlo}",
            p = in(reg) p,
            nlo = inout(reg) new as u64 => _,
            in("rcx") (new >> 64) as u64,
            inout("rax") lo,
            inout("rdx") hi,
            options(nostack),
        );
    }
    (u128::from(hi) << 64) | u128::from(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_bytes_swaps_within_one_block_only_if_unchanged() {
        let mf = MemoryFile::new().unwrap();
        let f = mf.allocate(1).unwrap();
        mf.write(f, &[0x90, 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05])
            .unwrap();
        mf.replace_bytes(f + 1, &[0xb8, 0x27, 0, 0, 0], &[0xff, 0x24, 0x25, 8, 0])
            .unwrap();
        let mut b = [0u8; 8];
        mf.read(f, &mut b).unwrap();
        assert_eq!(b, [0x90, 0xff, 0x24, 0x25, 8, 0, 0x0f, 0x05]);
        // Not what is there: refused, nothing written.
        let r = mf.replace_bytes(f + 1, &[0xb8, 0x27, 0, 0, 0], &[1, 2, 3, 4, 5]);
        assert!(r.is_err());
        // Across an 8-byte word inside a 16-byte block: fine.
        mf.replace_bytes(f + 6, &[0x0f, 0x05, 0, 0], &[1, 2, 3, 4])
            .unwrap();
        let mut c = [0u8; 16];
        mf.read(f, &mut c).unwrap();
        assert_eq!(&c[..10], &[0x90, 0xff, 0x24, 0x25, 8, 0, 1, 2, 3, 4]);
        // Across a 16-byte block: refused, nothing written.
        assert!(mf
            .replace_bytes(f + 14, &[0, 0, 0, 0], &[5, 6, 7, 8])
            .is_err());
        mf.read(f, &mut c).unwrap();
        assert_eq!(&c[10..], &[0; 6]);
    }

    #[test]
    fn freed_runs_are_reused_and_joined() {
        let mf = MemoryFile::new().unwrap();
        mf.allocator().dirty_max = 0;
        let free_runs = |mf: &MemoryFile| mf.allocator().free.clone();
        let a = mf.allocate(4).unwrap();
        let b = mf.allocate(2).unwrap();
        assert_eq!(b, a + 4 * PAGE_SIZE);
        // Freed in any order, a's pages join into one run of 4; b's, at the end of the
        // used offsets, go back to them.
        for i in [1, 3, 0, 2] {
            mf.dec_ref(a + i * PAGE_SIZE);
        }
        assert_eq!(free_runs(&mf).into_iter().collect::<Vec<_>>(), vec![(a, 4)]);
        mf.dec_ref(b + PAGE_SIZE);
        mf.dec_ref(b);
        assert!(free_runs(&mf).is_empty());
        assert_eq!(mf.allocator().bump, a);
        // A run is reused whole or in part, and reads as zeros.
        let c = mf.allocate(3).unwrap();
        mf.write(c, b"dirty").unwrap();
        mf.dec_ref(c);
        let d = mf.allocate(1).unwrap();
        assert_eq!(d, c);
        let mut z = [1u8; 5];
        mf.read(d, &mut z).unwrap();
        assert_eq!(z, [0; 5]);
    }

    #[test]
    fn mapping_and_unmapping_forever_does_not_run_out() {
        let mf = MemoryFile::new().unwrap();
        mf.allocator().dirty_max = 0;
        // Each round frees a 1 MiB run behind a frame still in use, so the run cannot go
        // back to the never-used offsets: it must be reused, or 65536 rounds would use
        // all 64 GiB of them.
        let mut pinned = Vec::new();
        for _ in 0..500 {
            let f = mf.allocate(256).unwrap();
            pinned.push(mf.allocate(1).unwrap());
            for i in 0..256 {
                mf.dec_ref(f + i * PAGE_SIZE);
            }
            if let Some(p) = pinned.len().checked_sub(2).map(|i| pinned.remove(i)) {
                mf.dec_ref(p);
            }
        }
        assert!(mf.allocator().bump <= 260 * PAGE_SIZE);
        for p in pinned {
            mf.dec_ref(p);
        }
        assert_eq!(mf.allocated_bytes(), 0);
        assert_eq!(mf.allocator().bump, 0);
    }

    #[test]
    fn freed_frames_kept_unpunched_serve_only_copies() {
        let mf = MemoryFile::new().unwrap();
        let a = mf.allocate(3).unwrap();
        mf.write(a, b"old").unwrap();
        mf.dec_refs([a, a + PAGE_SIZE, a + 2 * PAGE_SIZE]);
        // A plain allocation gets zeros, never those frames.
        let z = mf.allocate(1).unwrap();
        assert_ne!(z, a);
        let mut b = [1u8; 3];
        mf.read(z, &mut b).unwrap();
        assert_eq!(b, [0; 3]);
        // A copy's allocation gets them, old bytes and all, and says so.
        let (c, dirty) = mf.allocate_to_overwrite(2).unwrap();
        assert_eq!((c, dirty), (a, true));
        mf.read(c, &mut b).unwrap();
        assert_eq!(&b, b"old");
        assert_eq!(mf.ref_count(c + PAGE_SIZE), 1);
        // What is left of the run serves a smaller one; then none is left.
        assert_eq!(
            mf.allocate_to_overwrite(1).unwrap(),
            (a + 2 * PAGE_SIZE, true)
        );
        assert!(!mf.allocate_to_overwrite(1).unwrap().1);
        // At most DIRTY_MAX pages wait: a bigger run is punched and reads as zeros.
        let big = mf.allocate(DIRTY_MAX + 1).unwrap();
        mf.write(big, b"old").unwrap();
        mf.dec_refs((0..=DIRTY_MAX).map(|i| big + i * PAGE_SIZE));
        assert!(mf.allocator().dirty_pages <= DIRTY_MAX);
        let (d, dirty) = mf.allocate_to_overwrite(DIRTY_MAX + 1).unwrap();
        assert!(!dirty);
        mf.read(d, &mut b).unwrap();
        assert_eq!(b, [0; 3]);
    }

    #[test]
    fn data_is_found_and_forgotten_when_freed() {
        let mf = MemoryFile::new().unwrap();
        let a = mf.allocate(8).unwrap();
        mf.write(a + PAGE_SIZE, b"x").unwrap();
        mf.write(a + 5 * PAGE_SIZE + 100, b"y").unwrap();
        let held = |mf: &MemoryFile| mf.holds_data(a, 8).unwrap();
        let expect = [false, true, false, false, false, true, false, false];
        assert_eq!(held(&mf), expect);
        // Asked again (now from what it learnt), and after more is written.
        assert_eq!(held(&mf), expect);
        mf.write(a + 7 * PAGE_SIZE, b"z").unwrap();
        assert!(held(&mf)[7]);
        // A freed frame is a hole again, even reused at once.
        mf.allocator().dirty_max = 0;
        mf.dec_ref(a + PAGE_SIZE);
        assert_eq!(mf.allocate(1).unwrap(), a + PAGE_SIZE);
        assert!(!held(&mf)[1]);
        // Data just after the range is not in it.
        assert_eq!(mf.holds_data(a + 2 * PAGE_SIZE, 3).unwrap(), [false; 3]);
    }

    #[test]
    fn frames_count_references_and_keep_data_until_freed() {
        let mf = MemoryFile::new().unwrap();
        mf.allocator().dirty_max = 0;
        let a = mf.allocate(2).unwrap();
        assert_eq!(mf.allocated_bytes(), 2 * PAGE_SIZE);
        mf.write(a, b"x").unwrap();
        assert_eq!(mf.holds_data(a, 2).unwrap(), [true, false]);
        // Shared by a fork, then given back by one side: still live, still data.
        mf.inc_refs([a, a + PAGE_SIZE]);
        assert_eq!((mf.ref_count(a), mf.ref_count(a + PAGE_SIZE)), (2, 2));
        mf.dec_refs([a, a + PAGE_SIZE]);
        assert_eq!(mf.ref_count(a), 1);
        assert!(mf.allocator().frames.holds_data(a));
        assert_eq!(mf.allocated_bytes(), 2 * PAGE_SIZE);
        // The last reference frees it: no count, no data, not counted as held.
        mf.dec_refs([a]);
        assert_eq!(mf.ref_count(a), 0);
        assert!(!mf.allocator().frames.holds_data(a));
        assert_eq!(mf.allocated_bytes(), PAGE_SIZE);
        // A reference dropped again, or to a frame never handed out, changes nothing.
        mf.dec_refs([a, 1 << 30, FILE_SIZE + PAGE_SIZE]);
        assert_eq!(mf.ref_count(FILE_SIZE + PAGE_SIZE), 0);
        assert_eq!(mf.allocated_bytes(), PAGE_SIZE);
    }
}
