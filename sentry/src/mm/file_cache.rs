//! The pages of files that do not change (the read-only host tree the gofer serves), kept
//! in the MemoryFile and shared copy-on-write by every private mapping of them.
//!
//! Without it each private mapping copies its file's bytes into fresh frames on every
//! fault: every `execve` of a dynamic program read `ld.so` and libc again. With it the first
//! fault reads a page once and later mappings, in any process, map that very frame
//! read-only; a write (or a syscall patch) gives the writer its own copy.
//!
//! The cache is bounded (see [`MAX_CACHED_PAGES`]): past the bound, the pages no mapping
//! holds are dropped, least recently used files first. Pages a mapping holds cost nothing
//! extra, as the mapping would hold a copy of them otherwise.

use super::{MappableFile, MemoryFile, PAGE_SIZE};
use crate::errno;
use crate::error::Result;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// How many pages all the caches of one MemoryFile hold at most (64 MiB) before pages no
/// mapping holds are dropped; a sweep goes down to three quarters of it.
const MAX_CACHED_PAGES: u64 = 16384;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One file's cached pages.
pub struct FileCache {
    mf: Arc<MemoryFile>,
    /// The file's size, fixed for the cache's life: only files that do not change have
    /// one.
    size: u64,
    /// Page index → frame, each holding a reference for the cache.
    frames: Mutex<BTreeMap<u64, u64>>,
    /// When the cache was last used, on its MemoryFile's [`FileCaches`] clock.
    last_used: AtomicU64,
}

impl FileCache {
    /// An empty cache of a file of `size` bytes, registered with `mf`'s caches.
    pub fn new(mf: &Arc<MemoryFile>, size: u64) -> Arc<FileCache> {
        let cache = Arc::new(FileCache {
            mf: mf.clone(),
            size,
            frames: Mutex::new(BTreeMap::new()),
            last_used: AtomicU64::new(0),
        });
        mf.file_caches().register(&cache);
        cache
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Is this the cache of pages in `mf`?
    pub fn is_in(&self, mf: &Arc<MemoryFile>) -> bool {
        Arc::ptr_eq(&self.mf, mf)
    }

    /// Frames for pages `[first, first + n)` that lie within the file, in order, as
    /// `(index, frame)`, each with a reference for the caller (who gives it back with
    /// `dec_ref`). Pages not cached yet are read from `file`, each run of them in one read
    /// straight into fresh frames; bytes past the end of the file read as zeros.
    pub fn frames_for(
        &self,
        file: &dyn MappableFile,
        first: u64,
        n: u64,
    ) -> Result<Vec<(u64, u64)>> {
        let caches = self.mf.file_caches();
        self.last_used.store(caches.tick(), Ordering::Relaxed);
        let last = first.saturating_add(n).min(self.size.div_ceil(PAGE_SIZE));
        let mut out = Vec::new();
        let mut added = 0u64;
        let filled = self.fill(file, first, last, &mut out, &mut added);
        if added > 0 {
            caches.grew(added);
        }
        filled.map(|()| out)
    }

    /// The body of [`Self::frames_for`]: `out` gets the frames, `added` counts the pages
    /// newly cached (even when a later read fails).
    fn fill(
        &self,
        file: &dyn MappableFile,
        first: u64,
        last: u64,
        out: &mut Vec<(u64, u64)>,
        added: &mut u64,
    ) -> Result<()> {
        {
            let mut frames = lock(&self.frames);
            let mut i = first;
            while i < last {
                if let Some(&f) = frames.get(&i) {
                    out.push((i, f));
                    i += 1;
                    continue;
                }
                let run_end = frames.range(i..last).next().map_or(last, |(next, _)| *next);
                let k = run_end - i;
                let frame = self.mf.allocate(k)?;
                if let Err(e) = self.read_into(file, frame, i, k) {
                    self.mf.dec_refs((0..k).map(|j| frame + j * PAGE_SIZE));
                    return Err(e);
                }
                for j in 0..k {
                    frames.insert(i + j, frame + j * PAGE_SIZE);
                    out.push((i + j, frame + j * PAGE_SIZE));
                }
                *added += k;
                i = run_end;
            }
            self.mf.inc_refs(out.iter().map(|(_, f)| *f));
        }
        Ok(())
    }

    /// Read pages `[index, index + k)` of the file into the fresh frames from `frame`.
    fn read_into(&self, file: &dyn MappableFile, frame: u64, index: u64, k: u64) -> Result<()> {
        let off = index.checked_mul(PAGE_SIZE).ok_or(errno!(EFAULT))?;
        let want = self.size.saturating_sub(off).min(k * PAGE_SIZE) as usize;
        self.mf.fill_frames(frame, k, |buf| {
            let dst = buf.get_mut(..want).ok_or(errno!(EFAULT))?;
            let mut got = 0;
            while got < want {
                let rest = dst.get_mut(got..).ok_or(errno!(EFAULT))?;
                match file.read_at(rest, off + got as u64)? {
                    0 => break, // shorter than it was: the rest stays zeros
                    r => got += r,
                }
            }
            Ok(())
        })
    }

    /// Drop the cached pages no mapping holds; returns how many.
    fn shed(&self) -> u64 {
        let mut frames = lock(&self.frames);
        let idle: Vec<u64> = frames
            .iter()
            .filter(|(_, f)| self.mf.ref_count(**f) <= 1)
            .map(|(i, _)| *i)
            .collect();
        let freed: Vec<u64> = idle.iter().filter_map(|i| frames.remove(i)).collect();
        self.mf.dec_refs(freed.iter().copied());
        freed.len() as u64
    }

    /// Pages cached (for tests).
    #[cfg(test)]
    fn cached_pages(&self) -> usize {
        lock(&self.frames).len()
    }
}

impl Drop for FileCache {
    fn drop(&mut self) {
        let frames = std::mem::take(self.frames.get_mut().unwrap_or_else(|e| e.into_inner()));
        self.mf.file_caches().shrank(frames.len() as u64);
        self.mf.dec_refs(frames.into_values());
    }
}

/// All the file caches of one MemoryFile, and how much they hold.
#[derive(Default)]
pub struct FileCaches {
    caches: Mutex<Vec<Weak<FileCache>>>,
    pages: AtomicU64,
    clock: AtomicU64,
    /// [`MAX_CACHED_PAGES`] (tests set less).
    limit: AtomicU64,
}

impl FileCaches {
    pub fn new() -> FileCaches {
        FileCaches {
            limit: AtomicU64::new(MAX_CACHED_PAGES),
            ..FileCaches::default()
        }
    }

    fn register(&self, cache: &Arc<FileCache>) {
        let mut caches = lock(&self.caches);
        caches.retain(|c| c.strong_count() > 0);
        caches.push(Arc::downgrade(cache));
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn shrank(&self, pages: u64) {
        let _ = self
            .pages
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(pages))
            });
    }

    /// `pages` more are cached: past the limit, drop idle pages, least recently used
    /// files first, down to three quarters of it.
    fn grew(&self, pages: u64) {
        let limit = self.limit.load(Ordering::Relaxed);
        let total = self.pages.fetch_add(pages, Ordering::Relaxed) + pages;
        if total <= limit {
            return;
        }
        let mut live: Vec<Arc<FileCache>> = {
            let mut caches = lock(&self.caches);
            caches.retain(|c| c.strong_count() > 0);
            caches.iter().filter_map(Weak::upgrade).collect()
        };
        live.sort_by_key(|c| c.last_used.load(Ordering::Relaxed));
        let target = limit / 4 * 3;
        for cache in live {
            if self.pages.load(Ordering::Relaxed) <= target {
                break;
            }
            self.shrank(cache.shed());
        }
    }

    /// Pages held by all caches.
    pub fn cached_pages(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    fn set_limit(&self, pages: u64) {
        self.limit.store(pages, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of bytes that counts its reads.
    struct Bytes {
        data: Vec<u8>,
        reads: AtomicU64,
    }

    impl MappableFile for Bytes {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            let from = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(self.data.len());
            let src = &self.data[from..];
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
            Ok(n)
        }
    }

    fn file(len: usize) -> Bytes {
        Bytes {
            data: (0..len).map(|i| (i % 251) as u8 + 1).collect(),
            reads: AtomicU64::new(0),
        }
    }

    fn page(mf: &MemoryFile, frame: u64) -> Vec<u8> {
        let mut b = vec![0u8; PAGE_SIZE as usize];
        mf.read(frame, &mut b).unwrap();
        b
    }

    #[test]
    fn a_page_is_read_once_and_shared_by_later_users() {
        let mf = Arc::new(MemoryFile::new().unwrap());
        let f = file(3 * PAGE_SIZE as usize);
        let cache = FileCache::new(&mf, f.data.len() as u64);
        let a = cache.frames_for(&f, 0, 3).unwrap();
        assert_eq!(f.reads.load(Ordering::Relaxed), 1, "one run, one read");
        let b = cache.frames_for(&f, 1, 2).unwrap();
        assert_eq!(f.reads.load(Ordering::Relaxed), 1);
        assert_eq!(&a[1..], &b[..]);
        for (i, frame) in &a {
            let at = (*i * PAGE_SIZE) as usize;
            assert_eq!(page(&mf, *frame), f.data[at..at + PAGE_SIZE as usize]);
            assert_eq!(mf.ref_count(*frame), if *i == 0 { 2 } else { 3 });
        }
        mf.dec_refs(a.iter().chain(&b).map(|(_, f)| *f));
        drop(cache);
        assert_eq!(mf.allocated_bytes(), 0);
        assert_eq!(mf.file_caches().cached_pages(), 0);
    }

    #[test]
    fn nothing_past_the_end_and_the_last_page_ends_in_zeros() {
        let mf = Arc::new(MemoryFile::new().unwrap());
        let f = file(PAGE_SIZE as usize + 100);
        let cache = FileCache::new(&mf, f.data.len() as u64);
        let got = cache.frames_for(&f, 0, 5).unwrap();
        assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1]);
        let last = page(&mf, got[1].1);
        assert_eq!(last[..100], f.data[PAGE_SIZE as usize..]);
        assert!(last[100..].iter().all(|b| *b == 0));
        assert!(cache.frames_for(&f, 2, 1).unwrap().is_empty());
        mf.dec_refs(got.iter().map(|(_, f)| *f));
    }

    #[test]
    fn past_the_limit_idle_pages_go_and_held_ones_stay() {
        let mf = Arc::new(MemoryFile::new().unwrap());
        mf.file_caches().set_limit(4);
        let f = file(8 * PAGE_SIZE as usize);
        let cache = FileCache::new(&mf, f.data.len() as u64);
        let held = cache.frames_for(&f, 0, 2).unwrap();
        let idle = cache.frames_for(&f, 2, 2).unwrap();
        mf.dec_refs(idle.iter().map(|(_, f)| *f));
        assert_eq!(cache.cached_pages(), 4);
        // Two more: past the limit; the two idle pages go, the held ones stay.
        let more = cache.frames_for(&f, 4, 2).unwrap();
        assert_eq!(cache.cached_pages(), 4);
        assert_eq!(mf.file_caches().cached_pages(), 4);
        for (_, frame) in held.iter().chain(&more) {
            assert_eq!(mf.ref_count(*frame), 2);
        }
        // Read again, an evicted page has the file's bytes.
        let again = cache.frames_for(&f, 2, 1).unwrap();
        let at = 2 * PAGE_SIZE as usize;
        assert_eq!(page(&mf, again[0].1), f.data[at..at + PAGE_SIZE as usize]);
        mf.dec_refs(held.iter().chain(&more).chain(&again).map(|(_, f)| *f));
        drop(cache);
        assert_eq!(mf.allocated_bytes(), 0);
    }
}
