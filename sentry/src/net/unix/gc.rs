//! Collecting sockets that only messages in flight keep alive (Linux's `unix_gc`).
//!
//! A socket sent over a socket lives while its message is queued. If the only
//! references to a set of sockets are messages in those sockets' own queues (a socket
//! sent to itself, two sockets sent to each other, then closed), no one can ever receive
//! them, and reference counting alone would keep them, and every file they carry, for
//! the sandbox's life. When a socket closes while sockets are in flight, the collector
//! looks at the in-flight ones: a socket is live if something other than those queues
//! holds it (an fd, a running syscall, the queue of a socket not in flight) or if a live
//! socket's queue holds it; the queues of the others are emptied.
#![deny(unsafe_code)]

use super::{Endpoint, Msg, UnixSocket};
use crate::vfs::FileDescription;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// Unix socket files inside queued messages: how many times each is queued.
struct InFlight {
    files: HashMap<usize, (Weak<dyn FileDescription>, usize)>,
}

fn inflight() -> MutexGuard<'static, InFlight> {
    static INFLIGHT: OnceLock<Mutex<InFlight>> = OnceLock::new();
    INFLIGHT
        .get_or_init(|| {
            Mutex::new(InFlight {
                files: HashMap::new(),
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn addr(f: &Arc<dyn FileDescription>) -> usize {
    Arc::as_ptr(f) as *const () as usize
}

fn is_unix(f: &Arc<dyn FileDescription>) -> bool {
    f.as_any().is_some_and(|a| a.is::<UnixSocket>())
}

/// `files` were queued in a message.
pub(super) fn sent(files: &[Arc<dyn FileDescription>]) {
    if !files.iter().any(is_unix) {
        return;
    }
    let mut m = inflight();
    for f in files.iter().filter(|f| is_unix(f)) {
        let e = m
            .files
            .entry(addr(f))
            .or_insert_with(|| (Arc::downgrade(f), 0));
        e.1 += 1;
    }
}

/// `files` left a queue (received, or dropped with their message).
pub(super) fn left(files: &[Arc<dyn FileDescription>]) {
    if !files.iter().any(is_unix) {
        return;
    }
    let mut m = inflight();
    for f in files.iter().filter(|f| is_unix(f)) {
        let k = addr(f);
        if let Some(e) = m.files.get_mut(&k) {
            e.1 = e.1.saturating_sub(1);
            if e.1 == 0 {
                m.files.remove(&k);
            }
        }
    }
}

fn endpoint_of(f: &Arc<dyn FileDescription>) -> Option<&Arc<Endpoint>> {
    f.as_any()
        .and_then(|a| a.downcast_ref::<UnixSocket>())
        .map(|s| &s.ep)
}

/// The addresses of the unix socket files queued at `ep`, and at the connections
/// waiting on it if it listens.
fn queued_sockets(ep: &Endpoint) -> Vec<usize> {
    let pending: Vec<Arc<Endpoint>>;
    let mut out = Vec::new();
    {
        let st = ep.lock();
        for m in &st.recvq {
            out.extend(m.rights.iter().filter(|f| is_unix(f)).map(addr));
        }
        pending = match &st.conn {
            super::Conn::Listening { pending, .. } => pending.iter().cloned().collect(),
            _ => Vec::new(),
        };
    }
    for p in &pending {
        let st = p.lock();
        for m in &st.recvq {
            out.extend(m.rights.iter().filter(|f| is_unix(f)).map(addr));
        }
    }
    out
}

/// Empty `ep`'s queue and its pending connections' queues, into `dead`.
fn purge(ep: &Endpoint, dead: &mut Vec<Msg>, dead_eps: &mut Vec<Arc<Endpoint>>) {
    let pending: Vec<Arc<Endpoint>> = {
        let mut st = ep.lock();
        dead.extend(st.recvq.drain(..));
        st.recv_bytes = 0;
        match &mut st.conn {
            super::Conn::Listening { pending, .. } => pending.drain(..).collect(),
            _ => Vec::new(),
        }
    };
    for p in &pending {
        let mut st = p.lock();
        dead.extend(st.recvq.drain(..));
        st.recv_bytes = 0;
    }
    dead_eps.extend(pending);
}

/// Whether any socket is in flight.
pub(super) fn anything_in_flight() -> bool {
    !inflight().files.is_empty()
}

/// Find and free the unreachable in-flight sockets. Only one collection runs at a time;
/// the sockets it frees close inside it and do not start another.
pub(super) fn collect() {
    static RUNNING: Mutex<()> = Mutex::new(());
    let Ok(_running) = RUNNING.try_lock() else {
        return;
    };
    let files: Vec<Arc<dyn FileDescription>> = {
        let mut m = inflight();
        m.files.retain(|_, (w, _)| w.strong_count() > 0);
        m.files.values().filter_map(|(w, _)| w.upgrade()).collect()
    };
    if files.is_empty() {
        return;
    }
    let index: HashMap<usize, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (addr(f), i))
        .collect();
    let inner: Vec<Vec<usize>> = files
        .iter()
        .map(|f| {
            endpoint_of(f)
                .map(|ep| queued_sockets(ep))
                .unwrap_or_default()
        })
        .collect();
    // References from the queues of in-flight sockets, per socket.
    let mut from_queues = vec![0usize; files.len()];
    for q in &inner {
        for a in q {
            if let Some(n) = index.get(a).and_then(|&j| from_queues.get_mut(j)) {
                *n += 1;
            }
        }
    }
    // Live: held from elsewhere (our own upgrade aside), or queued at a live socket.
    let mut live: HashSet<usize> = HashSet::new();
    let mut work: Vec<usize> = Vec::new();
    for (i, (f, &queued)) in files.iter().zip(&from_queues).enumerate() {
        let refs = Arc::strong_count(f).saturating_sub(1);
        if refs > queued {
            live.insert(i);
            work.push(i);
        }
    }
    while let Some(i) = work.pop() {
        for a in inner.get(i).into_iter().flatten() {
            if let Some(&j) = index.get(a) {
                if live.insert(j) {
                    work.push(j);
                }
            }
        }
    }
    let mut dead = Vec::new();
    let mut dead_eps = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if !live.contains(&i) {
            if let Some(ep) = endpoint_of(f) {
                purge(ep, &mut dead, &mut dead_eps);
            }
        }
    }
    // Dropped with no lock held: closing them closes what they carried.
    drop(dead);
    drop(dead_eps);
    drop(files);
}
