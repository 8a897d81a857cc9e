//! A page cache: one file's data as MemoryFile frames.
//!
//! tmpfs files and `MAP_SHARED|MAP_ANONYMOUS` memory keep their bytes here, and
//! `MAP_SHARED` mappings map these very frames into the application: a store through a
//! mapping *is* a write to the file, and a `write(2)` is seen by every mapping at once,
//! in every process. Frames are allocated on first write (holes read as zeros) and hold
//! one reference for the cache; every mapping of a page takes its own, so a page that is
//! still mapped outlives its file.

use super::{MemoryFile, PAGE_SIZE};
use crate::errno;
use crate::error::Result;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Largest size a cache accepts (`EFBIG` beyond): Linux's `MAX_LFS_FILESIZE`.
pub const MAX_SIZE: u64 = i64::MAX as u64;

pub struct PageCache {
    mf: Arc<MemoryFile>,
    state: Mutex<State>,
    /// Held (cloned) by every shared mapping that may write these pages, so that
    /// `F_SEAL_WRITE` can tell whether one exists (Linux's `i_mmap_writable`).
    writers: Arc<()>,
}

struct State {
    size: u64,
    /// Page index → frame. Pages past the end of the file are only kept while some
    /// mapping still holds them (see [`PageCache::truncate`]), zeroed.
    frames: BTreeMap<u64, u64>,
}

/// The page index of byte `off` and the offset inside that page.
fn split(off: u64) -> (u64, u64) {
    (off / PAGE_SIZE, off % PAGE_SIZE)
}

/// Number of pages that hold `size` bytes.
fn pages_for(size: u64) -> u64 {
    size.div_ceil(PAGE_SIZE)
}

impl PageCache {
    /// An empty file.
    pub fn new(mf: Arc<MemoryFile>) -> PageCache {
        PageCache {
            mf,
            state: Mutex::new(State {
                size: 0,
                frames: BTreeMap::new(),
            }),
            writers: Arc::new(()),
        }
    }

    /// A token a shared mapping that may write holds for as long as it exists.
    pub fn writer_token(&self) -> Arc<()> {
        self.writers.clone()
    }

    /// Does a shared mapping that may write these pages exist?
    pub fn writably_mapped(&self) -> bool {
        Arc::strong_count(&self.writers) > 1
    }

    /// A file of `size` zero bytes (the object behind `MAP_SHARED|MAP_ANONYMOUS`).
    pub fn with_size(mf: Arc<MemoryFile>, size: u64) -> Result<PageCache> {
        let c = PageCache::new(mf);
        c.truncate(size)?;
        Ok(c)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
    }

    pub fn size(&self) -> u64 {
        self.state().size
    }

    /// Frames the cache holds (for `stat`'s block count and tests).
    pub fn resident_pages(&self) -> u64 {
        self.state().frames.len() as u64
    }

    /// Does page `index` hold a frame (`mincore`)?
    pub fn is_resident(&self, index: u64) -> bool {
        self.state().frames.contains_key(&index)
    }

    /// Read up to `buf.len()` bytes at `off`; fewer only at end of file.
    pub fn read_at(&self, buf: &mut [u8], off: u64) -> Result<usize> {
        let st = self.state();
        let Some(avail) = st.size.checked_sub(off) else {
            return Ok(0);
        };
        let n = usize::try_from(avail).unwrap_or(usize::MAX).min(buf.len());
        let mut done = 0usize;
        while done < n {
            let (index, in_page) = split(off + done as u64);
            let len = ((PAGE_SIZE - in_page) as usize).min(n - done);
            let dst = buf.get_mut(done..done + len).ok_or(errno!(EFAULT))?;
            match st.frames.get(&index) {
                Some(&frame) => self.mf.read(frame + in_page, dst)?,
                None => dst.fill(0),
            }
            done += len;
        }
        Ok(n)
    }

    /// Write all of `buf` at `off`, growing the file if it ends past the end.
    pub fn write_at(&self, buf: &[u8], off: u64) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let end = off
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= MAX_SIZE)
            .ok_or(errno!(EFBIG))?;
        let mut st = self.state();
        let old_size = st.size;
        if end > old_size {
            self.grow_locked(&mut st, end)?;
        }
        if let Err(e) = self.fill_holes(&mut st, off / PAGE_SIZE, pages_for(end)) {
            st.size = old_size;
            return Err(e);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let (index, in_page) = split(off + done as u64);
            let len = ((PAGE_SIZE - in_page) as usize).min(buf.len() - done);
            let frame = *st.frames.get(&index).ok_or(errno!(EIO))?;
            let src = buf.get(done..done + len).ok_or(errno!(EFAULT))?;
            self.mf.write(frame + in_page, src)?;
            done += len;
        }
        Ok(buf.len())
    }

    /// Give every page in `[first, last)` a frame; runs of missing pages get contiguous
    /// frames, so that a mapping of them is one host mapping. On failure the frames it
    /// allocated are given back.
    fn fill_holes(&self, st: &mut State, first: u64, last: u64) -> Result<()> {
        let mut fresh = Vec::new();
        let mut i = first;
        while i < last {
            if st.frames.contains_key(&i) {
                i += 1;
                continue;
            }
            let run_end = st
                .frames
                .range(i..last)
                .next()
                .map_or(last, |(next, _)| *next);
            let n = run_end - i;
            let frame = match self.mf.allocate(n) {
                Ok(f) => f,
                Err(e) => {
                    self.release(st, &fresh);
                    return Err(e);
                }
            };
            for k in 0..n {
                st.frames.insert(i + k, frame + k * PAGE_SIZE);
                fresh.push(i + k);
            }
            i = run_end;
        }
        Ok(())
    }

    /// Give back the cache's frames for `indices`.
    fn release(&self, st: &mut State, indices: &[u64]) {
        for i in indices {
            if let Some(f) = st.frames.remove(i) {
                self.mf.dec_ref(f);
            }
        }
    }

    /// Zero `[from, to)` of page `index`'s frame, if it has one.
    fn zero_in_page(&self, st: &State, index: u64, from: u64, to: u64) -> Result<()> {
        let Some(&frame) = st.frames.get(&index) else {
            return Ok(());
        };
        if from >= to || to > PAGE_SIZE {
            return Ok(());
        }
        self.mf
            .write(frame + from, &vec![0u8; (to - from) as usize])
    }

    /// Grow the file to `new` bytes: what was past the old end reads as zeros, whatever a
    /// mapping stored there meanwhile (Linux zeroes the partial page too).
    fn grow_locked(&self, st: &mut State, new: u64) -> Result<()> {
        let old = st.size;
        let (old_index, in_page) = split(old);
        if in_page != 0 {
            self.zero_in_page(st, old_index, in_page, PAGE_SIZE)?;
        }
        let kept: Vec<u64> = st
            .frames
            .range(pages_for(old)..pages_for(new))
            .map(|(_, f)| *f)
            .collect();
        for f in kept {
            self.mf.write(f, &[0u8; PAGE_SIZE as usize])?;
        }
        st.size = new;
        Ok(())
    }

    /// Set the size. Shrinking frees the pages wholly past the new end and zeroes the
    /// rest of the last one. A page some mapping still holds is zeroed and kept instead,
    /// so that mapping and file stay one if the file grows again.
    pub fn truncate(&self, size: u64) -> Result<()> {
        if size > MAX_SIZE {
            return Err(errno!(EFBIG));
        }
        let mut st = self.state();
        if size >= st.size {
            return self.grow_locked(&mut st, size);
        }
        let (index, in_page) = split(size);
        if in_page != 0 {
            self.zero_in_page(&st, index, in_page, PAGE_SIZE)?;
        }
        self.drop_pages(&mut st, pages_for(size), u64::MAX)?;
        st.size = size;
        Ok(())
    }

    /// `fallocate(FALLOC_FL_PUNCH_HOLE)`: `[start, end)` reads as zeros afterwards; whole
    /// pages inside give their memory back unless a mapping holds them.
    pub fn punch_hole(&self, start: u64, end: u64) -> Result<()> {
        let mut st = self.state();
        let end = end.min(st.size);
        if start >= end {
            return Ok(());
        }
        let (first, first_off) = split(start);
        let (last, last_off) = split(end);
        if first == last {
            return self.zero_in_page(&st, first, first_off, last_off);
        }
        self.zero_in_page(&st, first, first_off, PAGE_SIZE)?;
        self.zero_in_page(&st, last, 0, last_off)?;
        let whole_from = if first_off == 0 { first } else { first + 1 };
        self.drop_pages(&mut st, whole_from, last)
    }

    /// Free the frames of pages `[from, to)`, zeroing instead those still mapped.
    fn drop_pages(&self, st: &mut State, from: u64, to: u64) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        let doomed: Vec<(u64, u64)> = st.frames.range(from..to).map(|(i, f)| (*i, *f)).collect();
        for (i, f) in doomed {
            if self.mf.ref_count(f) > 1 {
                self.mf.write(f, &[0u8; PAGE_SIZE as usize])?;
            } else {
                st.frames.remove(&i);
                self.mf.dec_ref(f);
            }
        }
        Ok(())
    }

    /// The frame of page `index` for a mapping, allocated (zeroed) if the page is a hole.
    /// The caller gets its own reference and gives it back with `dec_ref`. `EFAULT` past
    /// the end of the file (Linux raises SIGBUS there).
    pub fn frame_for(&self, index: u64) -> Result<u64> {
        let frames = self.frames_for(index, 1)?;
        frames
            .first()
            .map(|(_, f)| *f)
            .ok_or(errno!(EFAULT, "mapped page past the end of the file"))
    }

    /// Frames for pages `[first, first + n)` that lie within the file, in order, as
    /// `(index, frame)`, each with a reference for the caller (see [`Self::frame_for`]).
    pub fn frames_for(&self, first: u64, n: u64) -> Result<Vec<(u64, u64)>> {
        let mut st = self.state();
        let last = first.saturating_add(n).min(pages_for(st.size));
        if first >= last {
            return Ok(Vec::new());
        }
        self.fill_holes(&mut st, first, last)?;
        let out: Vec<(u64, u64)> = st
            .frames
            .range(first..last)
            .map(|(i, f)| (*i, *f))
            .collect();
        for (_, f) in &out {
            self.mf.inc_ref(*f);
        }
        Ok(out)
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, f) in std::mem::take(&mut st.frames) {
            self.mf.dec_ref(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Errno;

    fn cache() -> PageCache {
        PageCache::new(Arc::new(MemoryFile::new().unwrap()))
    }

    fn read_all(c: &PageCache) -> Vec<u8> {
        let mut buf = vec![0xffu8; c.size() as usize + 10];
        let n = c.read_at(&mut buf, 0).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn write_read_and_holes() {
        let c = cache();
        assert_eq!(c.write_at(b"hello", 0).unwrap(), 5);
        assert_eq!(c.size(), 5);
        assert_eq!(read_all(&c), b"hello");
        // A write far out leaves a hole that reads as zeros and costs no frame.
        c.write_at(b"x", 10 * PAGE_SIZE + 3).unwrap();
        assert_eq!(c.size(), 10 * PAGE_SIZE + 4);
        assert_eq!(c.resident_pages(), 2);
        let mut buf = [0xffu8; 8];
        assert_eq!(c.read_at(&mut buf, 5 * PAGE_SIZE).unwrap(), 8);
        assert_eq!(buf, [0; 8]);
        assert_eq!(c.read_at(&mut buf, 10 * PAGE_SIZE).unwrap(), 4);
        assert_eq!(&buf[..4], b"\0\0\0x");
        assert_eq!(c.read_at(&mut buf, 11 * PAGE_SIZE).unwrap(), 0);
        // A write across a page boundary.
        let data: Vec<u8> = (0..PAGE_SIZE as usize + 100).map(|i| i as u8).collect();
        c.write_at(&data, PAGE_SIZE - 50).unwrap();
        let mut back = vec![0u8; data.len()];
        c.read_at(&mut back, PAGE_SIZE - 50).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn huge_offsets_do_not_panic() {
        let c = cache();
        assert_eq!(c.write_at(b"x", u64::MAX).unwrap_err().errno, Errno::EFBIG);
        assert_eq!(c.write_at(b"x", MAX_SIZE).unwrap_err().errno, Errno::EFBIG);
        assert_eq!(c.truncate(u64::MAX).unwrap_err().errno, Errno::EFBIG);
        let mut buf = [0u8; 4];
        assert_eq!(c.read_at(&mut buf, u64::MAX).unwrap(), 0);
        // A sparse file at the largest size is fine: nothing is allocated.
        c.truncate(MAX_SIZE).unwrap();
        assert_eq!(c.resident_pages(), 0);
        assert_eq!(c.read_at(&mut buf, MAX_SIZE - 2).unwrap(), 2);
        assert!(c.frames_for(u64::MAX - 1, 5).unwrap().is_empty());
        c.punch_hole(0, u64::MAX).unwrap();
    }

    #[test]
    fn truncate_frees_and_zeroes_the_tail() {
        let c = cache();
        c.write_at(&vec![7u8; 3 * PAGE_SIZE as usize], 0).unwrap();
        assert_eq!(c.resident_pages(), 3);
        c.truncate(PAGE_SIZE + 10).unwrap();
        assert_eq!(c.resident_pages(), 2);
        // Growing again shows zeros past the old end, including in the partial page.
        c.truncate(2 * PAGE_SIZE).unwrap();
        let mut buf = [0xffu8; 20];
        c.read_at(&mut buf, PAGE_SIZE).unwrap();
        assert_eq!(&buf[..10], &[7u8; 10]);
        assert_eq!(&buf[10..], &[0u8; 10]);
        c.truncate(0).unwrap();
        assert_eq!(c.resident_pages(), 0);
        assert_eq!(c.size(), 0);
    }

    #[test]
    fn mapped_frames_outlive_truncate_and_the_cache() {
        let mf = Arc::new(MemoryFile::new().unwrap());
        let c = PageCache::new(mf.clone());
        c.write_at(b"abc", 0).unwrap();
        assert_eq!(c.frame_for(1).unwrap_err().errno, Errno::EFAULT);
        let f = c.frame_for(0).unwrap();
        assert_eq!(mf.ref_count(f), 2);
        // The mapping and the file are the same bytes, both ways.
        mf.write(f + 1, b"#").unwrap();
        assert_eq!(read_all(&c), b"a#c");
        c.write_at(b"Z", 2).unwrap();
        let mut b = [0u8; 3];
        mf.read(f, &mut b).unwrap();
        assert_eq!(&b, b"a#Z");
        // Truncated away while mapped: the frame is zeroed, kept, and still the file's
        // page when it grows back.
        c.truncate(0).unwrap();
        assert_eq!(mf.ref_count(f), 2);
        mf.read(f, &mut b).unwrap();
        assert_eq!(b, [0; 3]);
        c.truncate(3).unwrap();
        assert_eq!(c.frame_for(0).unwrap(), f);
        mf.dec_ref(f);
        drop(c);
        // The mapping's reference keeps the frame after the file is gone.
        assert_eq!(mf.ref_count(f), 1);
        mf.dec_ref(f);
        assert_eq!(mf.ref_count(f), 0);
    }

    #[test]
    fn frames_for_allocates_holes_contiguously_and_stops_at_eof() {
        let c =
            PageCache::with_size(Arc::new(MemoryFile::new().unwrap()), 3 * PAGE_SIZE + 1).unwrap();
        let got = c.frames_for(1, 10).unwrap();
        let idx: Vec<u64> = got.iter().map(|(i, _)| *i).collect();
        assert_eq!(idx, [1, 2, 3]);
        assert_eq!(got[1].1, got[0].1 + PAGE_SIZE);
        assert_eq!(got[2].1, got[1].1 + PAGE_SIZE);
        for (_, f) in got {
            c.memory_file().dec_ref(f);
        }
    }

    #[test]
    fn punch_hole_zeroes_and_frees_whole_pages() {
        let c = cache();
        c.write_at(&vec![1u8; 4 * PAGE_SIZE as usize], 0).unwrap();
        c.punch_hole(100, 3 * PAGE_SIZE + 5).unwrap();
        assert_eq!(c.size(), 4 * PAGE_SIZE);
        assert_eq!(c.resident_pages(), 2);
        let all = read_all(&c);
        assert!(all[..100].iter().all(|&b| b == 1));
        assert!(all[100..3 * PAGE_SIZE as usize + 5].iter().all(|&b| b == 0));
        assert!(all[3 * PAGE_SIZE as usize + 5..].iter().all(|&b| b == 1));
        // Within one page.
        c.punch_hole(10, 20).unwrap();
        let all = read_all(&c);
        assert!(all[..10].iter().all(|&b| b == 1));
        assert!(all[10..20].iter().all(|&b| b == 0));
    }
}
