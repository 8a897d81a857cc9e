//! The MemoryManager: one process's VMAs and the MemoryFile frames behind them.
//!
//! VMAs are the truth. Frames are allocated lazily: the stub faults, the sentry populates
//! a chunk around the fault (zeros for anonymous memory, file bytes for private file
//! mappings) and maps it into the stub. The sentry reads and writes application memory
//! through its own mapping of the MemoryFile, populating pages the same way.

use super::{
    page_down, page_up, FileCache, MappableFile, MemoryFile, PageCache, UserAddr, PAGE_SIZE,
};
use crate::error::Result;
use crate::platform::{Access, AddressSpace, Prot};
use crate::{errno, return_errno};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod patch;

/// The signal an unresolvable fault raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultSignal {
    /// SIGSEGV, SEGV_MAPERR: nothing is mapped there.
    MapErr,
    /// SIGSEGV, SEGV_ACCERR: mapped, but the access is not allowed.
    AccErr,
    /// SIGBUS, BUS_ADRERR: a file page past the end of the file.
    Bus,
}

/// What fills a VMA's pages the first time they are touched.
#[derive(Clone)]
pub enum Backing {
    /// Zero-filled memory.
    Anon,
    /// A private copy of a file; `offset` is the file offset of the VMA's start.
    File {
        file: Arc<dyn MappableFile>,
        offset: u64,
    },
    /// `MAP_SHARED` memory: the pages of a file's page cache (or of the anonymous one
    /// behind `MAP_SHARED|MAP_ANONYMOUS`), mapped as they are, never copied. `offset` is
    /// the file offset of the VMA's start; `may_write` is false for a file opened
    /// read-only, which `mprotect` may then not make writable (Linux's `VM_MAYWRITE`).
    Shared {
        cache: Arc<PageCache>,
        offset: u64,
        may_write: bool,
        /// The cache's [`PageCache::writer_token`] when `may_write`.
        writer: Option<Arc<()>>,
    },
}

#[derive(Clone)]
pub struct Vma {
    pub end: u64,
    pub prot: Prot,
    /// `MAP_SHARED`: populated pages are shared with children after `fork`, not copied.
    pub shared: bool,
    pub backing: Backing,
    /// What `/proc/PID/maps` shows: a path, `[heap]`, `[stack]`, or nothing.
    pub name: String,
}

impl Vma {
    /// May this VMA be made writable?
    fn may_write(&self) -> bool {
        !matches!(
            self.backing,
            Backing::Shared {
                may_write: false,
                ..
            }
        )
    }

    /// The backing of the part of this VMA that starts `delta` bytes in.
    fn backing_from(&self, delta: u64) -> Backing {
        match &self.backing {
            Backing::Anon => Backing::Anon,
            Backing::File { file, offset } => Backing::File {
                file: file.clone(),
                offset: offset.saturating_add(delta),
            },
            Backing::Shared {
                cache,
                offset,
                may_write,
                writer,
            } => Backing::Shared {
                cache: cache.clone(),
                offset: offset.saturating_add(delta),
                may_write: *may_write,
                writer: writer.clone(),
            },
        }
    }

    /// The page cache and page index behind `page` of a shared VMA starting at `start`.
    fn shared_index(&self, start: u64, page: u64) -> Option<(&Arc<PageCache>, u64)> {
        let Backing::Shared { cache, offset, .. } = &self.backing else {
            return None;
        };
        let off = offset.checked_add(page.checked_sub(start)?)?;
        Some((cache, off / PAGE_SIZE))
    }
}

/// Pages populated around an anonymous fault. Costs no host memory until touched: frames
/// of the sparse MemoryFile are only offsets until written.
const ANON_FAULT_AROUND: u64 = 256;
/// Pages copied from a file around a fault in a private file mapping.
const FILE_FAULT_AROUND: u64 = 16;
/// Pages populated around a fault in a private mapping of a cached file: the same pages
/// serve every later mapping, so more are read at once, and mapping them costs the stub
/// nothing until it touches them.
const CACHED_FAULT_AROUND: u64 = 64;

/// A fork copies the parent's writable private memory at once when it has at most this
/// many pages of it, instead of sharing it copy-on-write: a copy costs well under a
/// microsecond, a copy-on-write fault (in the parent or the child) a round trip to the
/// sentry, tens of microseconds, and a small process forking touches much of its
/// writable memory again soon (its stack, its data, the heap).
const EAGER_FORK_PAGES: usize = 256;

/// Runs of anonymous pages never written up to this long are copied at fork too (see
/// `MemoryManager::fork`).
const SMALL_HOLE_RUN: usize = 16;

/// At most this many mappings (runs of pages) are made for a forked child up front.
const PREMAP_RUNS: usize = 512;

/// Default `RLIMIT_STACK`: the main stack is mapped at this size from the start.
pub const STACK_SIZE: u64 = 8 << 20;
/// Space kept free below the stack before `mmap` allocations start.
const STACK_GAP: u64 = 128 << 20;
/// Lowest address `mmap` hands out without a hint (Linux's default `mmap_min_addr`).
const MMAP_MIN_ADDR: u64 = 0x10000;

pub struct MemoryManager {
    mf: Arc<MemoryFile>,
    aspace: Box<dyn AddressSpace>,
    /// VMAs keyed by start address; never overlapping, never empty.
    vmas: BTreeMap<u64, Vma>,
    /// Populated pages: page address → MemoryFile frame offset.
    pages: BTreeMap<u64, u64>,
    /// Pages whose frame is shared copy-on-write with another address space (after
    /// `fork`): mapped read-only until the first write copies them.
    cow: BTreeSet<u64>,
    brk_start: u64,
    brk: u64,
    stack_top: u64,
    mmap_top: u64,
    /// Where `execve` put argv, envp and the auxiliary vector (`/proc/PID/cmdline`…).
    pub exec_layout: ExecLayout,
    /// Syscall sites the platform had rewritten (see `patch.rs`): address → (original
    /// bytes, patched bytes).
    patched: BTreeMap<u64, patch::PatchedSite>,
}

/// The parts of the initial stack `/proc` shows, as Linux keeps them in `mm_struct`.
#[derive(Clone, Debug, Default)]
pub struct ExecLayout {
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// The auxiliary vector's (type, value) pairs, `AT_NULL` included.
    pub auxv: Vec<(u64, u64)>,
}

impl MemoryManager {
    pub fn new(mf: Arc<MemoryFile>, aspace: Box<dyn AddressSpace>) -> MemoryManager {
        let stack_top = aspace.max_user_address() - PAGE_SIZE;
        let mmap_top = stack_top - STACK_SIZE - STACK_GAP;
        MemoryManager {
            mf,
            aspace,
            vmas: BTreeMap::new(),
            pages: BTreeMap::new(),
            cow: BTreeSet::new(),
            brk_start: 0,
            brk: 0,
            stack_top,
            mmap_top,
            exec_layout: ExecLayout::default(),
            patched: BTreeMap::new(),
        }
    }

    /// The program break's start and its current end (`/proc/PID/stat`).
    pub fn brk_range(&self) -> (u64, u64) {
        (self.brk_start, self.brk)
    }

    /// How many pages in `[start, end)` have frames behind them.
    pub fn resident_in(&self, start: u64, end: u64) -> u64 {
        self.pages.range(start..end).count() as u64
    }

    /// How many pages have frames behind them (the resident set).
    pub fn resident_pages(&self) -> u64 {
        self.pages.len() as u64
    }

    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
    }

    /// The top of the main thread's stack (exclusive).
    pub fn stack_top(&self) -> u64 {
        self.stack_top
    }

    /// Where a PIE executable is loaded (Linux's `ELF_ET_DYN_BASE` without randomization).
    pub fn pie_base(&self) -> u64 {
        page_down(self.aspace.max_user_address() / 3 * 2)
    }

    /// Set the program break's start, right after the loaded executable.
    pub fn set_brk_start(&mut self, addr: u64) {
        self.brk_start = addr;
        self.brk = addr;
    }

    pub fn vmas(&self) -> impl Iterator<Item = (u64, &Vma)> {
        self.vmas.iter().map(|(s, v)| (*s, v))
    }

    /// The VMA containing `addr`, with its start.
    fn find_vma(&self, addr: u64) -> Option<(u64, &Vma)> {
        let (start, vma) = self.vmas.range(..=addr).next_back()?;
        (addr < vma.end).then_some((*start, vma))
    }

    fn range_is_free(&self, start: u64, end: u64) -> bool {
        if let Some((_, v)) = self.vmas.range(..end).next_back() {
            if v.end > start {
                return false;
            }
        }
        true
    }

    /// A free range of `len` bytes, top-down below the mmap base.
    fn find_free(&self, len: u64) -> Result<u64> {
        let mut top = self.mmap_top;
        for (start, vma) in self.vmas.range(..self.mmap_top).rev() {
            if vma.end <= top && top - vma.end >= len {
                return Ok(top - len);
            }
            top = top.min(*start);
        }
        if top >= len && top - len >= MMAP_MIN_ADDR {
            return Ok(top - len);
        }
        return_errno!(ENOMEM)
    }

    /// Split the VMA containing `addr` so that a VMA starts exactly at `addr`.
    fn split_at(&mut self, addr: u64) {
        let Some((start, vma)) = self.find_vma(addr) else {
            return;
        };
        if start == addr {
            return;
        }
        let mut tail = vma.clone();
        tail.backing = vma.backing_from(addr - start);
        if let Some(head) = self.vmas.get_mut(&start) {
            head.end = addr;
        }
        self.vmas.insert(addr, tail);
    }

    /// Drop the frames of populated pages in `[start, end)`.
    fn release_pages(&mut self, start: u64, end: u64) {
        self.forget_patches(start, end);
        let gone: Vec<(u64, u64)> = self
            .pages
            .range(start..end)
            .map(|(a, f)| (*a, *f))
            .collect();
        for (addr, _) in &gone {
            self.pages.remove(addr);
            self.cow.remove(addr);
        }
        self.mf.dec_refs(gone.into_iter().map(|(_, f)| f));
    }

    /// Remove every mapping in `[start, end)` (page aligned).
    fn unmap_range(&mut self, start: u64, end: u64) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        self.split_at(start);
        self.split_at(end);
        let doomed: Vec<u64> = self.vmas.range(start..end).map(|(s, _)| *s).collect();
        for s in doomed {
            self.vmas.remove(&s);
        }
        self.release_pages(start, end);
        self.aspace.unmap(start, end - start)
    }

    /// `mmap(2)` once the file (if any) is resolved. `len` is non-zero; returns the address.
    #[allow(clippy::too_many_arguments)]
    pub fn mmap(
        &mut self,
        hint: u64,
        len: u64,
        prot: Prot,
        fixed: bool,
        noreplace: bool,
        shared: bool,
        backing: Backing,
        name: String,
    ) -> Result<u64> {
        let len = page_up(len).ok_or(errno!(ENOMEM))?;
        if len == 0 {
            return_errno!(EINVAL);
        }
        let max = self.aspace.max_user_address();
        let start = if fixed || noreplace {
            if !hint.is_multiple_of(PAGE_SIZE) {
                return_errno!(EINVAL);
            }
            let end = hint.checked_add(len).ok_or(errno!(ENOMEM))?;
            if end > max || hint < MMAP_MIN_ADDR {
                // Linux: EPERM below mmap_min_addr, ENOMEM past TASK_SIZE.
                if hint < MMAP_MIN_ADDR {
                    return_errno!(EPERM);
                }
                return_errno!(ENOMEM);
            }
            if noreplace && !self.range_is_free(hint, end) {
                return_errno!(EEXIST);
            }
            self.unmap_range(hint, end)?;
            hint
        } else {
            let hint = page_down(hint);
            match hint.checked_add(len) {
                Some(end)
                    if hint >= MMAP_MIN_ADDR && end <= max && self.range_is_free(hint, end) =>
                {
                    hint
                }
                _ => self.find_free(len)?,
            }
        };
        let end = start + len;
        self.claim_patch_table(start, end);
        self.vmas.insert(
            start,
            Vma {
                end,
                prot,
                shared,
                backing,
                name,
            },
        );
        Ok(start)
    }

    /// `munmap(2)`.
    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<()> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return_errno!(EINVAL);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .filter(|&e| e <= self.aspace.max_user_address())
            .ok_or(errno!(EINVAL))?;
        self.unmap_range(addr, end)
    }

    /// The VMAs that overlap `[start, end)`.
    fn vmas_in(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, &Vma)> {
        let first = self.find_vma(start).map_or(start, |(s, _)| s);
        self.vmas.range(first..end).map(|(s, v)| (*s, v))
    }

    /// Check that every page of `[start, end)` is covered by some VMA.
    fn fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut cur = start;
        while cur < end {
            match self.find_vma(cur) {
                Some((_, v)) => cur = v.end,
                None => return false,
            }
        }
        true
    }

    /// `mprotect(2)`.
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<()> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return_errno!(EINVAL);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(errno!(ENOMEM))?;
        if addr == end {
            return Ok(());
        }
        if !self.fully_mapped(addr, end) {
            return_errno!(ENOMEM);
        }
        // A shared mapping of a file opened read-only never becomes writable.
        if prot.write && self.vmas_in(addr, end).any(|(_, v)| !v.may_write()) {
            return_errno!(EACCES);
        }
        if prot.write {
            // Code about to be written sees its own bytes again.
            self.unpatch_range(addr, end);
        }
        self.split_at(addr);
        self.split_at(end);
        for (_, vma) in self.vmas.range_mut(addr..end) {
            vma.prot = prot;
        }
        // The stub refaults with the new protection; populated pages keep their data.
        self.aspace.unmap(addr, end - addr)
    }

    /// `brk(2)`: returns the new break, or the old one if the request cannot be met.
    pub fn brk(&mut self, addr: u64) -> u64 {
        if addr < self.brk_start {
            return self.brk;
        }
        let (Some(old_end), Some(new_end)) = (page_up(self.brk), page_up(addr)) else {
            return self.brk;
        };
        if new_end > old_end {
            if !self.range_is_free(old_end, new_end) || new_end > self.mmap_top {
                return self.brk;
            }
            self.claim_patch_table(old_end, new_end);
            // Extend the heap VMA, or start it.
            let heap = self
                .vmas
                .range(..old_end)
                .next_back()
                .filter(|(_, v)| v.end == old_end && v.name == "[heap]")
                .map(|(s, _)| *s);
            match heap.and_then(|s| self.vmas.get_mut(&s)) {
                Some(v) => v.end = new_end,
                None => {
                    let vma = Vma {
                        end: new_end,
                        prot: Prot::RW,
                        shared: false,
                        backing: Backing::Anon,
                        name: "[heap]".into(),
                    };
                    self.vmas.insert(old_end, vma);
                }
            }
        } else if new_end < old_end && self.unmap_range(new_end, old_end).is_err() {
            return self.brk;
        }
        self.brk = addr;
        addr
    }

    /// `mremap(2)` for the cases programs use: shrink in place, grow in place, or move.
    /// Patched sites in the old range trap again (their return addresses would move).
    pub fn mremap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed_to: Option<u64>,
    ) -> Result<u64> {
        if let Some(end) = page_up(old_len).and_then(|l| old.checked_add(l)) {
            self.unpatch_range(old, end);
        }
        let to = self.mremap_inner(old, old_len, new_len, may_move, fixed_to)?;
        if let Some(end) = page_up(new_len).and_then(|l| to.checked_add(l)) {
            self.claim_patch_table(to, end);
        }
        Ok(to)
    }

    fn mremap_inner(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed_to: Option<u64>,
    ) -> Result<u64> {
        if !old.is_multiple_of(PAGE_SIZE) {
            return_errno!(EINVAL);
        }
        let old_len = page_up(old_len).ok_or(errno!(EINVAL))?;
        let new_len = page_up(new_len).ok_or(errno!(EINVAL))?;
        if new_len == 0 || old_len == 0 {
            return_errno!(EINVAL);
        }
        let old_end = old.checked_add(old_len).ok_or(errno!(EFAULT))?;
        // The old range must lie in one VMA.
        let (vstart, vma) = self.find_vma(old).ok_or(errno!(EFAULT))?;
        if vma.end < old_end {
            return_errno!(EFAULT);
        }
        let vma = vma.clone();
        if fixed_to.is_none() {
            if new_len <= old_len {
                self.unmap_range(old + new_len, old_end)?;
                return Ok(old);
            }
            let new_end = old.checked_add(new_len).ok_or(errno!(ENOMEM))?;
            if vma.end == old_end
                && new_end <= self.aspace.max_user_address()
                && self.range_is_free(old_end, new_end)
            {
                if let Some(v) = self.vmas.get_mut(&vstart) {
                    v.end = new_end;
                }
                return Ok(old);
            }
            if !may_move {
                return_errno!(ENOMEM);
            }
        }
        let dest = match fixed_to {
            Some(d) => {
                if d % PAGE_SIZE != 0 {
                    return_errno!(EINVAL);
                }
                let dend = d.checked_add(new_len).ok_or(errno!(EINVAL))?;
                if d < old_end && old < dend {
                    return_errno!(EINVAL);
                }
                self.unmap_range(d, dend)?;
                d
            }
            None => self.find_free(new_len)?,
        };
        // Move: the new VMA takes the old pages' frames.
        let moved: Vec<(u64, u64)> = self
            .pages
            .range(old..old_end)
            .map(|(a, f)| (*a, *f))
            .collect();
        let keep = old_len.min(new_len);
        for (a, f) in moved {
            self.pages.remove(&a);
            let was_cow = self.cow.remove(&a);
            if a - old < keep {
                self.pages.insert(dest + (a - old), f);
                if was_cow {
                    self.cow.insert(dest + (a - old));
                }
            } else {
                self.mf.dec_ref(f);
            }
        }
        let new_vma = Vma {
            end: dest + new_len,
            prot: vma.prot,
            shared: vma.shared,
            backing: vma.backing_from(old - vstart),
            name: vma.name.clone(),
        };
        // Remove the old range's VMA pieces (the pages are already moved).
        self.split_at(old);
        self.split_at(old_end);
        let doomed: Vec<u64> = self.vmas.range(old..old_end).map(|(s, _)| *s).collect();
        for s in doomed {
            self.vmas.remove(&s);
        }
        self.aspace.unmap(old, old_len)?;
        self.vmas.insert(dest, new_vma);
        Ok(dest)
    }

    /// `madvise(MADV_DONTNEED)`: private pages read back as zeros (or the file's bytes);
    /// shared pages are only unmapped and keep their contents, which live in the cache.
    pub fn discard(&mut self, addr: u64, len: u64) -> Result<()> {
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(errno!(EINVAL))?;
        if !self.fully_mapped(addr, end) {
            return_errno!(ENOMEM);
        }
        self.release_pages(addr, end);
        self.aspace.unmap(addr, end - addr)
    }

    /// `mincore(2)`: one byte per page, 1 where the page holds data.
    pub fn mincore(&self, addr: u64, len: u64) -> Result<Vec<u8>> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return_errno!(EINVAL);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(errno!(ENOMEM))?;
        if !self.fully_mapped(addr, end) {
            return_errno!(ENOMEM);
        }
        Ok((addr..end)
            .step_by(PAGE_SIZE as usize)
            .map(|p| {
                let in_cache = self.find_vma(p).and_then(|(s, v)| v.shared_index(s, p));
                let resident = self.pages.contains_key(&p)
                    || in_cache.is_some_and(|(cache, index)| cache.is_resident(index));
                u8::from(resident)
            })
            .collect())
    }

    /// Is every page of the range mapped (for `msync`)?
    pub fn check_mapped(&self, addr: u64, len: u64) -> Result<()> {
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(errno!(ENOMEM))?;
        if self.fully_mapped(addr, end) {
            Ok(())
        } else {
            Err(errno!(ENOMEM))
        }
    }

    /// The frame behind `page`, populating it (and only it) if needed.
    fn frame(&mut self, page: u64) -> Result<u64> {
        if let Some(f) = self.pages.get(&page) {
            return Ok(*f);
        }
        let (start, vma) = self.find_vma(page).ok_or(errno!(EFAULT))?;
        if let Some((cache, index)) = vma.shared_index(start, page) {
            let frame = cache.frame_for(index)?;
            self.pages.insert(page, frame);
            return Ok(frame);
        }
        if let Some(src) = self.cached_file(&vma.backing) {
            let copy = vma.prot.write;
            self.populate_cached(&src, start, page, page + PAGE_SIZE, copy)?;
            // Past the end of the file: the application would get SIGBUS; a syscall EFAULT.
            return self.pages.get(&page).copied().ok_or(errno!(EFAULT));
        }
        let backing = vma.backing.clone();
        let frame = self.mf.allocate(1)?;
        match fill_from(&self.mf, frame, 1, &backing, page - start) {
            Ok(1..) => {}
            // Past the end of the file: the application would get SIGBUS; a syscall EFAULT.
            Ok(0) => {
                self.mf.dec_ref(frame);
                return_errno!(EFAULT);
            }
            Err(e) => {
                self.mf.dec_ref(frame);
                return Err(e);
            }
        }
        self.pages.insert(page, frame);
        Ok(frame)
    }

    /// Atomically update the application's 32-bit word at `addr` (futex operations);
    /// returns the old value. `EFAULT` unless the word is writable.
    pub fn atomic_update_u32(&mut self, addr: u64, f: impl Fn(u32) -> u32) -> Result<u32> {
        if !addr.is_multiple_of(4) {
            return_errno!(EINVAL);
        }
        self.check_access(addr, 4, Access::Write)?;
        let page = page_down(addr);
        let mut frame = self.frame(page)?;
        if self.cow.contains(&page) {
            frame = self.break_cow(page)?;
        }
        self.mf.atomic_update_u32(frame + (addr - page), f)
    }

    /// `EFAULT` unless the application may write all of `[addr, addr + len)`.
    pub fn check_writable(&self, addr: UserAddr, len: usize) -> Result<()> {
        self.check_access(addr.0, len, Access::Write)
    }

    /// The MemoryFile offset behind `addr` (shared futexes are keyed by it).
    /// `None` for private memory: as in Linux, a futex there is keyed by address space
    /// and address even without FUTEX_PRIVATE_FLAG — its frame changes when a
    /// copy-on-write page is first written, so a frame key would lose wake-ups.
    pub fn futex_frame(&mut self, addr: u64) -> Result<Option<u64>> {
        self.check_access(addr, 4, Access::Read)?;
        let shared = self.find_vma(addr).is_some_and(|(_, v)| v.shared);
        if !shared {
            return Ok(None);
        }
        Ok(Some(
            self.frame(page_down(addr))? + (addr - page_down(addr)),
        ))
    }

    /// Check the VMAs allow `access` to every byte of `[addr, addr + len)`.
    fn check_access(&self, addr: u64, len: usize, access: Access) -> Result<()> {
        let end = addr.checked_add(len as u64).ok_or(errno!(EFAULT))?;
        let mut cur = addr;
        while cur < end {
            let (_, vma) = self.find_vma(cur).ok_or(errno!(EFAULT))?;
            if !vma.prot.allows(access) {
                return_errno!(EFAULT);
            }
            cur = vma.end;
        }
        Ok(())
    }

    /// Run `f` on each (frame offset, byte range in frame, byte range in the buffer) piece
    /// of `[addr, addr + len)`.
    fn for_each_piece(
        &mut self,
        addr: u64,
        len: usize,
        writing: bool,
        mut f: impl FnMut(&MemoryFile, u64, usize, usize) -> Result<()>,
    ) -> Result<()> {
        let mut done = 0usize;
        while done < len {
            let cur = addr + done as u64;
            let page = page_down(cur);
            let in_page = (cur - page) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(len - done);
            let mut frame = self.frame(page)?;
            if writing && self.cow.contains(&page) {
                frame = self.break_cow(page)?;
            }
            f(&self.mf, frame + in_page as u64, done, n)?;
            done += n;
        }
        Ok(())
    }

    pub fn copy_in(&mut self, addr: UserAddr, buf: &mut [u8]) -> Result<()> {
        self.check_access(addr.0, buf.len(), Access::Read)?;
        self.for_each_piece(addr.0, buf.len(), false, |mf, off, at, n| {
            let dst = buf.get_mut(at..at + n).ok_or(errno!(EFAULT))?;
            mf.read(off, dst)
        })
    }

    pub fn copy_out(&mut self, addr: UserAddr, data: &[u8]) -> Result<()> {
        self.check_access(addr.0, data.len(), Access::Write)?;
        self.write_unchecked(addr.0, data)
    }

    /// Write ignoring VMA protection: the loader zeroing the tail of a read-only segment,
    /// as Linux's ELF loader does before the protection applies.
    pub fn write_unchecked(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        self.check_access(addr, data.len(), Access::Read)
            .or_else(|_| {
                // Any VMA at all will do; protection is ignored here.
                if self.fully_mapped(addr, addr.saturating_add(data.len() as u64)) {
                    Ok(())
                } else {
                    Err(errno!(EFAULT))
                }
            })?;
        self.for_each_piece(addr, data.len(), true, |mf, off, at, n| {
            let src = data.get(at..at + n).ok_or(errno!(EFAULT))?;
            mf.write(off, src)
        })
    }

    /// A fault reported by the platform. `Ok` means the access can be retried; `Err`
    /// says which signal the application gets. `ip` is the faulting instruction pointer:
    /// a fault at (or just past) it is an instruction fetch.
    pub fn handle_fault(
        &mut self,
        addr: u64,
        mapped: bool,
        ip: u64,
    ) -> std::result::Result<(), FaultSignal> {
        let page = page_down(addr);
        let Some((start, vma)) = self.find_vma(page) else {
            return Err(FaultSignal::MapErr);
        };
        if vma.prot == Prot::NONE {
            return Err(FaultSignal::AccErr);
        }
        // A private file page wholly past the end of the file is SIGBUS (mmap(2)).
        if let Backing::File { file, offset } = &vma.backing {
            if !mapped && !self.pages.contains_key(&page) {
                let foff = offset.saturating_add(page - start);
                let past_end = match file.file_cache(&self.mf) {
                    Some(cache) => foff >= cache.size(),
                    None => {
                        let mut probe = [0u8; 1];
                        matches!(file.read_at(&mut probe, foff), Ok(0))
                    }
                };
                if past_end {
                    return Err(FaultSignal::Bus);
                }
            }
        }
        // A fetch fault's address is the instruction pointer, or the next page when the
        // instruction straddles two (an x86 instruction is at most 15 bytes).
        let fetch = addr.wrapping_sub(ip) < 16;
        self.resolve_fault(page, start, mapped, fetch).map_err(|e| {
            if e.errno == crate::Errno::EIO {
                FaultSignal::Bus
            } else {
                FaultSignal::AccErr
            }
        })
    }

    fn resolve_fault(&mut self, page: u64, start: u64, mapped: bool, fetch: bool) -> Result<()> {
        let (_, vma) = self.find_vma(page).ok_or(errno!(EFAULT))?;
        if mapped {
            // A write to a copy-on-write page gets its own copy.
            if vma.prot.write && self.cow.contains(&page) {
                return self.break_cow(page).map(|_| ());
            }
            // A fault on a writable page that is no longer copy-on-write is stale: threads
            // of the process wrote to the same copy-on-write page at once, and another
            // thread's fault, handled first, gave it its own copy after this one was
            // reported. On such a page only a fetch without PROT_EXEC can really be
            // refused (x86 has no write-only pages), so anything else is retried, with
            // the page mapped as the VMA says in case this thread's view is older.
            if vma.prot.write && (!fetch || vma.prot.exec) {
                let prot = vma.prot;
                if let Some(frame) = self.pages.get(&page).copied() {
                    self.aspace.map(page, PAGE_SIZE, prot, frame)?;
                }
                return Ok(());
            }
            return_errno!(EFAULT);
        }
        let vma = vma.clone();
        let around = match vma.backing {
            Backing::Anon => ANON_FAULT_AROUND,
            Backing::File { ref file, .. } if file.file_cache(&self.mf).is_some() => {
                CACHED_FAULT_AROUND
            }
            Backing::File { .. } | Backing::Shared { .. } => FILE_FAULT_AROUND,
        };
        let chunk = around * PAGE_SIZE;
        let lo = (page / chunk * chunk).max(start);
        let hi = lo.saturating_add(chunk).min(vma.end);
        if matches!(vma.backing, Backing::Shared { .. }) {
            self.populate_shared(start, &vma, lo, hi)?;
            if !self.pages.contains_key(&page) {
                // Past the end of the file: SIGBUS.
                return_errno!(EIO, "shared mapping past the end of its file");
            }
        } else {
            self.populate(start, &vma, lo, hi)?;
        }
        self.map_populated(lo, hi, vma.prot)
    }

    /// Give every page of `[lo, hi)` inside `vma` a frame.
    fn populate(&mut self, vstart: u64, vma: &Vma, lo: u64, hi: u64) -> Result<()> {
        if let Some(src) = self.cached_file(&vma.backing) {
            return self.populate_cached(&src, vstart, lo, hi, vma.prot.write);
        }
        // A run of missing pages gets contiguous frames, filled in one go.
        for (p, q) in self.missing_runs(lo, hi) {
            let n = (q - p) / PAGE_SIZE;
            let frame = self.mf.allocate(n)?;
            let filled = match fill_from(&self.mf, frame, n, &vma.backing, p - vstart) {
                Ok(k) => k.min(n),
                Err(e) => {
                    for i in 0..n {
                        self.mf.dec_ref(frame + i * PAGE_SIZE);
                    }
                    return Err(e);
                }
            };
            for i in 0..n {
                if i < filled {
                    self.pages.insert(p + i * PAGE_SIZE, frame + i * PAGE_SIZE);
                } else {
                    self.mf.dec_ref(frame + i * PAGE_SIZE);
                }
            }
            if filled < n {
                // The rest is past the end of the file.
                return Ok(());
            }
        }
        Ok(())
    }

    /// The runs `[p, q)` of pages of `[lo, hi)` that have no frame yet.
    fn missing_runs(&self, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut p = lo;
        for (&a, _) in self.pages.range(lo..hi) {
            if a > p {
                runs.push((p, a));
            }
            p = a + PAGE_SIZE;
        }
        if p < hi {
            runs.push((p, hi));
        }
        runs
    }

    /// Put `frames` (`(file page index, frame)`, from a cache asked for the pages of the
    /// run `[p, q)`, the first being `first`) in the page map; one outside the run (there
    /// are none) is given back. `cow`: the frames are shared, copy-on-write.
    fn place_frames(&mut self, p: u64, q: u64, first: u64, frames: Vec<(u64, u64)>, cow: bool) {
        for (index, frame) in frames {
            let at = index
                .checked_sub(first)
                .and_then(|k| k.checked_mul(PAGE_SIZE))
                .and_then(|d| p.checked_add(d))
                .filter(|&a| a < q);
            match at {
                Some(a) => {
                    self.pages.insert(a, frame);
                    if cow {
                        self.cow.insert(a);
                    }
                }
                None => self.mf.dec_ref(frame),
            }
        }
    }

    /// The file cache behind a private file mapping, if its file has one (and the
    /// mapping's offset is page-aligned, as `mmap` and the ELF loader make it).
    fn cached_file(&self, backing: &Backing) -> Option<CachedFile> {
        let Backing::File { file, offset } = backing else {
            return None;
        };
        if !offset.is_multiple_of(PAGE_SIZE) {
            return None;
        }
        Some(CachedFile {
            cache: file.file_cache(&self.mf)?,
            file: file.clone(),
            offset: *offset,
        })
    }

    /// Give the missing pages of `[lo, hi)` of a private mapping of a cached file (whose
    /// VMA starts at `vstart`) the cache's frames, copy-on-write, as far as the file
    /// reaches; or, with `copy` (a writable mapping, which would fault again on its first
    /// write: most are written), copies of them.
    fn populate_cached(
        &mut self,
        src: &CachedFile,
        vstart: u64,
        lo: u64,
        hi: u64,
        copy: bool,
    ) -> Result<()> {
        for (p, q) in self.missing_runs(lo, hi) {
            let first = src.offset.checked_add(p - vstart).ok_or(errno!(EFAULT))? / PAGE_SIZE;
            let n = (q - p) / PAGE_SIZE;
            let mut got = src.cache.frames_for(&*src.file, first, n)?;
            let complete = got.len() as u64 == n;
            if copy && !got.is_empty() {
                got = self.copies_of(got)?;
            }
            self.place_frames(p, q, first, got, !copy);
            if !complete {
                // The rest is past the end of the file.
                return Ok(());
            }
        }
        Ok(())
    }

    /// Fresh frames holding what `frames` hold, whose references are given back.
    fn copies_of(&self, frames: Vec<(u64, u64)>) -> Result<Vec<(u64, u64)>> {
        let copied = self
            .mf
            .allocate_to_overwrite(frames.len() as u64)
            .and_then(|(first, _)| {
                let new: Vec<(u64, u64)> = frames
                    .iter()
                    .enumerate()
                    .map(|(k, (i, _))| (*i, first + k as u64 * PAGE_SIZE))
                    .collect();
                for ((_, from), (_, to)) in frames.iter().zip(&new) {
                    if let Err(e) = self.mf.copy_frame(*from, *to) {
                        self.mf.dec_refs(new.iter().map(|(_, f)| *f));
                        return Err(e);
                    }
                }
                Ok(new)
            });
        self.mf.dec_refs(frames.iter().map(|(_, f)| *f));
        copied
    }

    /// Give the pages of `[lo, hi)` inside the shared `vma` their page cache frames, as
    /// far as the file reaches.
    fn populate_shared(&mut self, vstart: u64, vma: &Vma, lo: u64, hi: u64) -> Result<()> {
        for (p, q) in self.missing_runs(lo, hi) {
            let (cache, first) = vma.shared_index(vstart, p).ok_or(errno!(EFAULT))?;
            let frames = cache.frames_for(first, (q - p) / PAGE_SIZE)?;
            self.place_frames(p, q, first, frames, false);
        }
        Ok(())
    }

    /// Map the populated pages of `[lo, hi)` into the stub, one call per run of
    /// contiguous frames; copy-on-write pages go in without write permission.
    fn map_populated(&mut self, lo: u64, hi: u64, prot: Prot) -> Result<()> {
        let read_only = Prot {
            write: false,
            ..prot
        };
        let mut run: Option<(u64, u64, u64, bool)> = None; // (addr, len, frame, cow)
        let mut maps = Vec::new();
        for (a, f) in self.pages.range(lo..hi) {
            let (a, f, cow) = (*a, *f, self.cow.contains(a));
            run = match run {
                Some((ra, rl, rf, rc)) if ra + rl == a && rf + rl == f && rc == cow => {
                    Some((ra, rl + PAGE_SIZE, rf, rc))
                }
                Some((ra, rl, rf, rc)) => {
                    maps.push((ra, rl, if rc { read_only } else { prot }, rf));
                    Some((a, PAGE_SIZE, f, cow))
                }
                None => Some((a, PAGE_SIZE, f, cow)),
            };
        }
        if let Some((ra, rl, rf, rc)) = run {
            maps.push((ra, rl, if rc { read_only } else { prot }, rf));
        }
        self.aspace.map_many(&maps)
    }

    /// Give `page` a frame of its own (the first write after `fork`, or a patch of shared
    /// code). If the other side already let go of the frame, it is simply ours now. The
    /// stub's read-only view of the old frame is replaced by the new one, as the VMA
    /// allows (a stale view would show the application the old bytes).
    fn break_cow(&mut self, page: u64) -> Result<u64> {
        let prot = self.find_vma(page).ok_or(errno!(EFAULT))?.1.prot;
        let old = *self.pages.get(&page).ok_or(errno!(EFAULT))?;
        self.cow.remove(&page);
        let frame = if self.mf.ref_count(old) <= 1 {
            old
        } else {
            let (new, _) = self.mf.allocate_to_overwrite(1)?;
            if let Err(e) = self.mf.copy_frame(old, new) {
                self.mf.dec_ref(new);
                self.cow.insert(page);
                return Err(e);
            }
            self.pages.insert(page, new);
            self.mf.dec_ref(old);
            new
        };
        self.aspace.map(page, PAGE_SIZE, prot, frame)?;
        Ok(frame)
    }

    /// The child's half of `fork`: the same VMAs, and every populated page. Shared
    /// memory is shared; other read-only pages are shared copy-on-write. Writable private
    /// memory is copied now if there is little of it (see `EAGER_FORK_PAGES`);
    /// otherwise it is shared copy-on-write too, and the parent's writable private pages
    /// leave its stub, so that its next write faults and copies.
    ///
    /// `alone`: no other thread uses this memory (it cannot change while it is copied).
    pub fn fork(&mut self, alone: bool) -> Result<ForkedMm> {
        // The writable private pages, and which of them hold data (the others are still
        // holes of the MemoryFile: populated around a fault but never written).
        let mut data = BTreeSet::new();
        let mut eager = alone;
        if alone {
            let writable: Vec<(u64, u64)> = self
                .vmas
                .iter()
                .filter(|(_, v)| !v.shared && v.prot.write)
                .flat_map(|(s, v)| self.pages.range(*s..v.end).map(|(a, f)| (*a, *f)))
                .collect();
            let mut i = 0;
            while i < writable.len() && eager {
                // A run of pages whose frames are contiguous too: one query.
                let mut n = 1;
                while let (Some(a), Some(b)) = (writable.get(i + n - 1), writable.get(i + n)) {
                    if b.0 != a.0 + PAGE_SIZE || b.1 != a.1 + PAGE_SIZE {
                        break;
                    }
                    n += 1;
                }
                let Some((va, frame)) = writable.get(i).copied() else {
                    break;
                };
                let held = self.mf.holds_data(frame, n as u64)?;
                for (k, h) in held.into_iter().enumerate() {
                    if h {
                        data.insert(va + k as u64 * PAGE_SIZE);
                    }
                }
                eager = data.len() <= EAGER_FORK_PAGES;
                i += n;
            }
        }
        // Built as it goes: on an error its drop gives the frames back.
        let mut child = ForkedMm {
            mf: self.mf.clone(),
            vmas: self.vmas.clone(),
            pages: BTreeMap::new(),
            cow: BTreeSet::new(),
            brk_start: self.brk_start,
            brk: self.brk,
            exec_layout: self.exec_layout.clone(),
            patched: self.patched.clone(),
            patching: self.patching_live(),
            copied: eager,
            left_out: Vec::new(),
        };
        // Who gets what: copies (fresh frames, filled from the parent's where it wrote
        // them), or the parent's frames shared.
        let mut copies: Vec<(u64, u64, bool)> = Vec::new(); // (page, parent's frame, data)
        let mut shared: Vec<(u64, u64, bool)> = Vec::new(); // (page, frame, cow)
        let mut unmap = Vec::new();
        // A run of anonymous pages never written, and where it goes: a small one is
        // copied too (a fresh frame, zeros), so that the copies around it map in one
        // host call rather than two and an unmap; a big one is left out (the child gets
        // a frame when it first touches a page there, as for any new anonymous memory).
        let mut holes: Vec<(u64, u64)> = Vec::new();
        let mut place_holes = |holes: &mut Vec<(u64, u64)>, copies: &mut Vec<_>| {
            if holes.len() <= SMALL_HOLE_RUN {
                copies.extend(holes.drain(..).map(|(a, f)| (a, f, false)));
            } else {
                child.left_out.extend(holes.drain(..).map(|(a, _)| a));
            }
        };
        for (start, vma) in &self.vmas {
            let private_write = !vma.shared && vma.prot.write;
            let anon = matches!(vma.backing, Backing::Anon);
            for (a, f) in self.pages.range(*start..vma.end) {
                if eager && private_write {
                    let held = data.contains(a);
                    if held || !anon {
                        place_holes(&mut holes, &mut copies);
                        copies.push((*a, *f, held));
                    } else {
                        if holes.last().is_some_and(|(h, _)| h + PAGE_SIZE != *a) {
                            place_holes(&mut holes, &mut copies);
                        }
                        holes.push((*a, *f));
                    }
                } else {
                    shared.push((*a, *f, !vma.shared));
                }
            }
            place_holes(&mut holes, &mut copies);
            if private_write && !eager {
                unmap.push((*start, vma.end - *start));
            }
        }
        self.mf.inc_refs(shared.iter().map(|(_, f, _)| *f));
        // Built from sorted lists in one go: inserting hundreds of pages one by one took
        // a tenth of a fork.
        child.pages = shared.iter().map(|(a, f, _)| (*a, *f)).collect();
        child.cow = shared
            .iter()
            .filter(|(_, _, cow)| *cow)
            .map(|(a, _, _)| *a)
            .collect();
        if !copies.is_empty() {
            // One run of frames: one allocation, and the copied pages that are neighbours
            // in memory map as one.
            let (first, dirty) = self.mf.allocate_to_overwrite(copies.len() as u64)?;
            for (k, (a, _, _)) in copies.iter().enumerate() {
                child.pages.insert(*a, first + k as u64 * PAGE_SIZE);
            }
            for (k, (_, f, held)) in copies.iter().enumerate() {
                let to = first + k as u64 * PAGE_SIZE;
                if *held {
                    self.mf.copy_frame(*f, to)?;
                } else if dirty {
                    self.mf.zero_frame(to)?;
                }
            }
        }
        for a in &child.cow {
            self.cow.insert(*a);
        }
        for (a, len) in unmap {
            self.aspace.unmap(a, len)?;
        }
        // The pages left out were not touched since they were populated (holes of the
        // MemoryFile, which read as zeros): the parent lets them go too, so that its next
        // forks neither look at them again nor unmap them from each child (a process
        // forking in a loop had ~290 of them, its stack populated around a first fault;
        // MemoryManager::fork 52 -> 35 µs). Its next touch there faults a zero page in,
        // as it would have read. Nothing runs in the parent meanwhile (`alone`).
        if eager && self.release_untouched(&child.left_out) {
            child.left_out.clear();
        }
        Ok(child)
    }

    /// Unmap and free the populated pages `pages` (sorted), each run with one host call;
    /// true if all of them went. A run the stub fails to unmap keeps its frames.
    fn release_untouched(&mut self, pages: &[u64]) -> bool {
        let mut i = 0;
        while let Some(&start) = pages.get(i) {
            let mut n = 1;
            while pages.get(i + n) == Some(&(start + n as u64 * PAGE_SIZE)) {
                n += 1;
            }
            let len = n as u64 * PAGE_SIZE;
            if let Err(e) = self.aspace.unmap(start, len) {
                tracing::debug!("fork: untouched pages at {start:#x} kept ({e})");
                return false;
            }
            let frames: Vec<u64> = pages
                .get(i..i + n)
                .unwrap_or_default()
                .iter()
                .filter_map(|a| {
                    self.cow.remove(a);
                    self.pages.remove(a)
                })
                .collect();
            self.mf.dec_refs(frames);
            i += n;
        }
        true
    }

    /// Map what the child of a fork inherited into its new stub, as much as
    /// [`PREMAP_RUNS`] allows, so that it does not fault on each page it touches first (a
    /// fault costs a round trip to the sentry; many mappings go in one).
    fn premap(&mut self) {
        if !self.aspace.batches_maps() {
            return;
        }
        let vmas: Vec<(u64, u64, Prot)> =
            self.vmas.iter().map(|(s, v)| (*s, v.end, v.prot)).collect();
        let read_only = |p: Prot| Prot { write: false, ..p };
        let mut maps: Vec<(u64, u64, Prot, u64)> = Vec::new();
        for (start, end, prot) in vmas {
            if prot == Prot::NONE {
                continue;
            }
            for (a, f) in self.pages.range(start..end) {
                let p = if self.cow.contains(a) {
                    read_only(prot)
                } else {
                    prot
                };
                match maps.last_mut() {
                    Some((ra, rl, rp, rf)) if *ra + *rl == *a && *rf + *rl == *f && *rp == p => {
                        *rl += PAGE_SIZE;
                    }
                    _ => {
                        if maps.len() >= PREMAP_RUNS {
                            break;
                        }
                        maps.push((*a, PAGE_SIZE, p, *f));
                    }
                }
            }
        }
        if let Err(e) = self.aspace.map_many(&maps) {
            tracing::debug!("fork: premapping the child failed ({e}); it faults instead");
        }
    }

    /// The child's memory manager, in the address space its own thread created.
    ///
    /// `inherited`: the address space is a host copy of the parent's (with
    /// [`ForkedMm::host_fixups`] made), so it has the child's mappings already.
    pub fn from_fork(
        mut forked: ForkedMm,
        aspace: Box<dyn AddressSpace>,
        inherited: bool,
    ) -> MemoryManager {
        let mut mm = MemoryManager::new(forked.mf.clone(), aspace);
        mm.vmas = std::mem::take(&mut forked.vmas);
        mm.pages = std::mem::take(&mut forked.pages);
        mm.cow = std::mem::take(&mut forked.cow);
        mm.brk_start = forked.brk_start;
        mm.brk = forked.brk;
        mm.exec_layout = std::mem::take(&mut forked.exec_layout);
        mm.patched = std::mem::take(&mut forked.patched);
        // Patching stopped in the parent (a gs base of its own, which the child keeps)
        // stays stopped in the child.
        if !forked.patching {
            mm.unpatch_all();
        }
        // The child's stub has a jump table of its own: it stays only if nothing of the
        // application's is where it is.
        let ranges: Vec<(u64, u64)> = mm.vmas.iter().map(|(s, v)| (*s, v.end)).collect();
        for (s, e) in ranges {
            mm.claim_patch_table(s, e);
        }
        if !inherited {
            mm.premap();
        }
        mm
    }
}

/// A forked address space on its way to the child's thread. Holds references to the
/// shared frames; dropped unused (the child failed to start), it gives them back.
pub struct ForkedMm {
    mf: Arc<MemoryFile>,
    vmas: BTreeMap<u64, Vma>,
    pages: BTreeMap<u64, u64>,
    cow: BTreeSet<u64>,
    brk_start: u64,
    brk: u64,
    exec_layout: ExecLayout,
    patched: BTreeMap<u64, patch::PatchedSite>,
    patching: bool,
    /// Writable private memory was copied (not shared copy-on-write).
    copied: bool,
    /// The parent's pages of writable private memory the copy left out (anonymous pages
    /// never written), in order: the child has no frame there yet.
    left_out: Vec<u64>,
}

impl ForkedMm {
    /// What a copy of the parent's host mappings needs to be the child's: its writable
    /// private memory is the child's own when it was copied (else the parent's had left
    /// its stub already, and everything else it maps is the child's as much as its own).
    /// The parent's stub maps exactly its pages (every host mapping is made from them):
    /// the copies go over theirs, neighbours in memory and in the file in one call even
    /// across areas, and the pages left out are unmapped. (Unmapping each writable area
    /// whole, then mapping each area's runs, took ~17 host calls in a small process's
    /// fork; now ~5.)
    pub fn host_fixups(&self) -> Vec<crate::platform::MapOp> {
        use crate::platform::MapOp;
        let mut ops = Vec::new();
        if !self.copied {
            return ops;
        }
        let mut gone: Option<(u64, u64)> = None;
        for &a in &self.left_out {
            gone = match gone {
                Some((ga, gl)) if ga + gl == a => Some((ga, gl + PAGE_SIZE)),
                Some((ga, gl)) => {
                    ops.push(MapOp::Unmap { addr: ga, len: gl });
                    Some((a, PAGE_SIZE))
                }
                None => Some((a, PAGE_SIZE)),
            };
        }
        if let Some((ga, gl)) = gone {
            ops.push(MapOp::Unmap { addr: ga, len: gl });
        }
        let mut run: Option<(u64, u64, Prot, u64)> = None;
        let flush = |run: Option<(u64, u64, Prot, u64)>, ops: &mut Vec<MapOp>| {
            if let Some((addr, len, prot, offset)) = run {
                ops.push(MapOp::Map {
                    addr,
                    len,
                    prot,
                    offset,
                });
            }
        };
        for (start, vma) in &self.vmas {
            if vma.shared || !vma.prot.write {
                continue;
            }
            for (a, f) in self.pages.range(*start..vma.end) {
                run = match run {
                    Some((ra, rl, rp, rf)) if ra + rl == *a && rf + rl == *f && rp == vma.prot => {
                        Some((ra, rl + PAGE_SIZE, rp, rf))
                    }
                    other => {
                        flush(other, &mut ops);
                        Some((*a, PAGE_SIZE, vma.prot, *f))
                    }
                };
            }
        }
        flush(run, &mut ops);
        ops
    }
}

impl Drop for ForkedMm {
    fn drop(&mut self) {
        self.mf
            .dec_refs(std::mem::take(&mut self.pages).into_values());
    }
}

/// A private mapping's file that has a [`FileCache`], and the file offset of the VMA's
/// start.
struct CachedFile {
    cache: Arc<FileCache>,
    file: Arc<dyn MappableFile>,
    offset: u64,
}

/// Fill `n` fresh frames starting at `frame` with the backing's bytes for the VMA offset
/// `delta`.
/// Returns how many of the pages hold file data: pages wholly past the end of the file
/// must not be populated (touching them is SIGBUS).
fn fill_from(mf: &MemoryFile, frame: u64, n: u64, backing: &Backing, delta: u64) -> Result<u64> {
    let Backing::File { file, offset } = backing else {
        return Ok(n); // fresh frames are already zero
    };
    let foff = offset.checked_add(delta).ok_or(errno!(EFAULT))?;
    let len = (n * PAGE_SIZE) as usize;
    let mut buf = vec![0u8; len];
    let mut got = 0usize;
    while got < len {
        let dst = buf.get_mut(got..).ok_or(errno!(EFAULT))?;
        let r = file.read_at(dst, foff + got as u64)?;
        if r == 0 {
            break;
        }
        got += r;
    }
    // Bytes past the end of the file stay zero, as Linux shows them in the last page.
    mf.write(frame, &buf)?;
    Ok((got as u64).div_ceil(PAGE_SIZE))
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        self.mf
            .dec_refs(std::mem::take(&mut self.pages).into_values());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Errno;
    use crate::platform::MapOp;

    /// An address space that only accepts what it is told: the manager's bookkeeping is
    /// what these tests look at.
    struct NoStub;

    impl AddressSpace for NoStub {
        fn map(&mut self, _: u64, _: u64, _: Prot, _: u64) -> Result<()> {
            Ok(())
        }
        fn unmap(&mut self, _: u64, _: u64) -> Result<()> {
            Ok(())
        }
        fn protect(&mut self, _: u64, _: u64, _: Prot) -> Result<()> {
            Ok(())
        }
        fn max_user_address(&self) -> u64 {
            0x7fff_ffff_f000
        }
    }

    fn mm(mf: &Arc<MemoryFile>) -> MemoryManager {
        MemoryManager::new(mf.clone(), Box::new(NoStub))
    }

    fn shared(cache: &Arc<PageCache>, offset: u64, may_write: bool) -> Backing {
        Backing::Shared {
            cache: cache.clone(),
            offset,
            may_write,
            writer: may_write.then(|| cache.writer_token()),
        }
    }

    fn read(m: &mut MemoryManager, addr: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        m.copy_in(UserAddr(addr), &mut b).unwrap();
        b
    }

    #[test]
    fn shared_mappings_are_the_cache_across_fork() {
        let mf = Arc::new(MemoryFile::new().unwrap());
        let cache = Arc::new(PageCache::with_size(mf.clone(), 4 * PAGE_SIZE).unwrap());
        let mut parent = mm(&mf);
        let b = shared(&cache, 0, true);
        let a = parent
            .mmap(
                0,
                4 * PAGE_SIZE,
                Prot::RW,
                false,
                false,
                true,
                b,
                String::new(),
            )
            .unwrap();
        parent.copy_out(UserAddr(a), b"parent").unwrap();
        parent.handle_fault(a, false, 0).unwrap();
        let forked = parent.fork(true).unwrap();
        let mut child = MemoryManager::from_fork(forked, Box::new(NoStub), false);
        // A page first touched after fork, from either side, is the same page.
        child
            .copy_out(UserAddr(a + 3 * PAGE_SIZE), b"child")
            .unwrap();
        assert_eq!(read(&mut parent, a + 3 * PAGE_SIZE, 5), b"child");
        child.copy_out(UserAddr(a + 1), b"C").unwrap();
        assert_eq!(read(&mut parent, a, 6), b"pCrent");
        let mut b = [0u8; 6];
        cache.read_at(&mut b, 0).unwrap();
        assert_eq!(&b, b"pCrent");
        // DONTNEED only drops the mapping; the data stays in the cache.
        parent.discard(a, 4 * PAGE_SIZE).unwrap();
        assert_eq!(read(&mut parent, a, 6), b"pCrent");
        drop(child);
        parent.munmap(a, 4 * PAGE_SIZE).unwrap();
        // Fault-around gave the holes frames; they stay the file's.
        assert_eq!(cache.resident_pages(), 4);
        drop(parent);
        drop(cache);
        assert_eq!(mf.allocated_bytes(), 0);
    }

    /// A new private anonymous read-write mapping of `pages` pages.
    fn anon_rw(m: &mut MemoryManager, pages: u64) -> u64 {
        m.mmap(
            0,
            pages * PAGE_SIZE,
            Prot::RW,
            false,
            false,
            false,
            Backing::Anon,
            String::new(),
        )
        .unwrap()
    }

    #[test]
    fn a_small_fork_copies_what_holds_data_and_shares_nothing_writable() {
        let mf = Arc::new(MemoryFile::new().unwrap());
        let mut parent = mm(&mf);
        let a = anon_rw(&mut parent, 8);
        parent.handle_fault(a, false, 0).unwrap();
        parent.copy_out(UserAddr(a), b"parent").unwrap();
        // Fault-around gave every page a frame; only the first holds data. The short
        // run of holes after it is copied too, as fresh frames (zeros), so that the
        // child's stub maps the area in one call.
        assert_eq!(parent.pages.len(), 8);
        let used = mf.allocated_bytes();
        let forked = parent.fork(true).unwrap();
        assert_eq!(
            forked.host_fixups(),
            [MapOp::Map {
                addr: a,
                len: 8 * PAGE_SIZE,
                prot: Prot::RW,
                offset: forked.pages[&a],
            }]
        );
        let mut child = MemoryManager::from_fork(forked, Box::new(NoStub), false);
        assert!(parent.cow.is_empty() && child.cow.is_empty());
        assert_eq!(child.pages.len(), 8);
        assert_eq!(mf.allocated_bytes(), used + 8 * PAGE_SIZE);
        // Copies: a write on either side stays there, without any fault.
        child.copy_out(UserAddr(a), b"C").unwrap();
        parent.copy_out(UserAddr(a + 7 * PAGE_SIZE), b"P").unwrap();
        assert_eq!(read(&mut parent, a, 6), b"parent");
        assert_eq!(read(&mut child, a, 6), b"Carent");
        assert_eq!(read(&mut child, a + 7 * PAGE_SIZE, 1), b"\0");
        drop(child);
        drop(parent);
        assert_eq!(mf.allocated_bytes(), 0);
    }

    #[test]
    fn a_fork_leaves_out_long_runs_of_holes_and_the_parent_lets_them_go() {
        let mf = Arc::new(MemoryFile::new().unwrap());
        let mut parent = mm(&mf);
        let a = anon_rw(&mut parent, 64);
        for k in (0..64).step_by(8) {
            parent.handle_fault(a + k * PAGE_SIZE, false, 0).unwrap();
        }
        assert_eq!(parent.pages.len(), 64);
        parent.copy_out(UserAddr(a), b"parent").unwrap();
        let forked = parent.fork(true).unwrap();
        // The page with data is copied; the 63 holes are the child's to fault in, and
        // the parent's too: it unmapped them, so the child's host copy has none to undo.
        assert_eq!(
            forked.host_fixups(),
            [MapOp::Map {
                addr: a,
                len: PAGE_SIZE,
                prot: Prot::RW,
                offset: forked.pages[&a],
            }]
        );
        assert_eq!(parent.pages.len(), 1);
        assert_eq!(mf.allocated_bytes(), 2 * PAGE_SIZE);
        let mut child = MemoryManager::from_fork(forked, Box::new(NoStub), false);
        assert_eq!(child.pages.len(), 1);
        // Either side reads zeros there and writes its own page.
        assert_eq!(read(&mut parent, a + 40 * PAGE_SIZE, 1), b"\0");
        parent.copy_out(UserAddr(a + 40 * PAGE_SIZE), b"P").unwrap();
        assert_eq!(read(&mut child, a + 40 * PAGE_SIZE, 1), b"\0");
        assert_eq!(read(&mut parent, a + 40 * PAGE_SIZE, 1), b"P");
        assert_eq!(read(&mut child, a, 6), b"parent");
        // A second fork finds nothing left out.
        let again = parent.fork(true).unwrap();
        assert!(again.left_out.is_empty());
        drop(again);
        drop(child);
        drop(parent);
        assert_eq!(mf.allocated_bytes(), 0);
    }

    #[test]
    fn a_second_write_fault_on_a_page_already_copied_is_retried() {
        let mf = Arc::new(MemoryFile::new().unwrap());
        let mut parent = mm(&mf);
        let a = anon_rw(&mut parent, 1);
        parent.copy_out(UserAddr(a), b"x").unwrap();
        // Another thread uses the memory: copy-on-write.
        let child = MemoryManager::from_fork(parent.fork(false).unwrap(), Box::new(NoStub), false);
        // Two threads wrote the copy-on-write page at once: both faults were reported
        // before either was handled. The first copies the page; the second is stale.
        parent.handle_fault(a, true, 0).unwrap();
        parent.handle_fault(a + 8, true, 0).unwrap();
        // A fetch from a page without PROT_EXEC is still refused.
        assert_eq!(parent.handle_fault(a, true, a), Err(FaultSignal::AccErr));
        drop(child);
    }

    #[test]
    fn shared_offsets_eof_and_protection() {
        let mf = Arc::new(MemoryFile::new().unwrap());
        let cache = Arc::new(PageCache::new(mf.clone()));
        cache.write_at(b"page0", 0).unwrap();
        cache.write_at(b"page1", PAGE_SIZE).unwrap();
        let mut m = mm(&mf);
        // Two pages over a file of one page and a bit, from file page 1.
        let b = shared(&cache, PAGE_SIZE, false);
        let a = m
            .mmap(
                0,
                2 * PAGE_SIZE,
                Prot::from_bits(libc::PROT_READ),
                false,
                false,
                true,
                b,
                String::new(),
            )
            .unwrap();
        assert_eq!(read(&mut m, a, 5), b"page1");
        // Past the end of the file: no page (Linux: SIGBUS).
        let mut x = [0u8; 1];
        let e = m.copy_in(UserAddr(a + PAGE_SIZE), &mut x).unwrap_err();
        assert_eq!(e.errno, Errno::EFAULT);
        assert!(m.handle_fault(a + PAGE_SIZE, false, 0).is_err());
        m.handle_fault(a, false, 0).unwrap();
        // Opened read-only: never writable.
        let e = m.mprotect(a, PAGE_SIZE, Prot::RW).unwrap_err();
        assert_eq!(e.errno, Errno::EACCES);
        m.mprotect(a, PAGE_SIZE, Prot::NONE).unwrap();
        // The file grows: the second page appears.
        cache.write_at(b"page2", 2 * PAGE_SIZE).unwrap();
        assert_eq!(read(&mut m, a + PAGE_SIZE, 5), b"page2");
        // Moved, the second page still maps file page 2.
        let to = m
            .mremap(a + PAGE_SIZE, PAGE_SIZE, PAGE_SIZE, true, None)
            .unwrap();
        m.munmap(a, PAGE_SIZE).unwrap();
        cache.write_at(b"P", 2 * PAGE_SIZE).unwrap();
        assert_eq!(read(&mut m, to, 5), b"Page2");
        m.discard(to, PAGE_SIZE).unwrap();
        assert_eq!(read(&mut m, to, 5), b"Page2");
    }
}
