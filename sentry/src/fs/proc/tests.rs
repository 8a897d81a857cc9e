//! procfs pieces that do not need a running task; the rest is tested end to end by
//! tests/syscalls/proc.c and tests/tests/do_proc.rs.

use super::*;
use crate::kernel::task::Rlimits;

#[test]
fn limits_table_is_aligned_like_linux() {
    let s = pid::format_limits(&Rlimits::default());
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 17);
    assert_eq!(
        lines[0],
        "Limit                     Soft Limit           Hard Limit           Units     "
    );
    assert_eq!(
        lines[4],
        "Max stack size            8388608              unlimited            bytes     "
    );
    // No unit: the line ends after the hard limit's padding.
    assert_eq!(
        lines[14],
        "Max nice priority         0                    0                    "
    );
}

#[test]
fn uuid_is_version_4() {
    let u = random_uuid();
    assert_eq!(u.len(), 36);
    let parts: Vec<&str> = u.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(parts[2].starts_with('4'));
    assert_ne!(random_uuid(), u);
}

#[test]
fn root_outside_a_task_shows_only_static_entries() {
    let root = new_procfs();
    let names: Vec<Vec<u8>> = root
        .readdir()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&b"cpuinfo".to_vec()));
    assert!(names.contains(&b"self".to_vec()));
    assert!(!names
        .iter()
        .any(|n| n.first().is_some_and(u8::is_ascii_digit)));
    // Without a calling task there is no self and no pid.
    let me = root.lookup(b"self").unwrap();
    assert_eq!(me.readlink().unwrap_err().errno, crate::Errno::ENOENT);
    assert_eq!(
        root.lookup(b"1").err().map(|e| e.errno),
        Some(crate::Errno::ENOENT)
    );
    assert_eq!(
        root.lookup(b"01").err().map(|e| e.errno),
        Some(crate::Errno::ENOENT)
    );
    let v = root.lookup(b"sys").unwrap().lookup(b"kernel").unwrap();
    let osr = v.lookup(b"osrelease").unwrap();
    assert!(osr.stat().unwrap().is_reg());
}

/// A directory over a set of live names whose entries die when removed from it.
fn live_dir(live: &Arc<std::sync::Mutex<Vec<String>>>) -> Arc<dyn Inode> {
    let b = Builder::new(PROC_SUPER_MAGIC);
    let l = live.clone();
    b.clone().dir("live", 0o555, move || {
        let names = l.lock().unwrap().clone();
        Ok(names
            .into_iter()
            .map(|n| {
                let l2 = l.clone();
                let n2 = n.clone();
                let alive: node::Alive = Arc::new(move || l2.lock().unwrap().contains(&n2));
                let node = b.with(Arc::new(|| (0, 0)), alive).text(&n, "x");
                (n.into_bytes(), node)
            })
            .collect())
    })
}

#[test]
fn dentries_of_vanished_entries_are_dropped_and_swept() {
    use crate::vfs::Dentry;
    let live = Arc::new(std::sync::Mutex::new(vec![
        "a".to_string(),
        "b".to_string(),
    ]));
    let root = Dentry::new_root(live_dir(&live));
    let a = root.lookup(b"a").unwrap();
    assert!(Arc::ptr_eq(&a, &root.lookup(b"a").unwrap()));
    live.lock().unwrap().retain(|n| n != "a");
    assert_eq!(
        root.lookup(b"a").err().map(|e| e.errno),
        Some(crate::Errno::ENOENT)
    );
    assert!(a.is_deleted());
    assert!(root.cached_child(b"b").is_some() || root.lookup(b"b").is_ok());

    // Dead entries nobody looks up again go in a later sweep.
    let old: Vec<String> = (0..70).map(|i| format!("old{i}")).collect();
    live.lock().unwrap().extend(old.iter().cloned());
    let kept: Vec<_> = old
        .iter()
        .map(|n| root.lookup(n.as_bytes()).unwrap())
        .collect();
    live.lock().unwrap().retain(|n| !n.starts_with("old"));
    for i in 0..70 {
        let n = format!("new{i}");
        live.lock().unwrap().push(n.clone());
        root.lookup(n.as_bytes()).unwrap();
    }
    assert!(root.cached_child(b"old0").is_none());
    assert!(kept.iter().all(|d| d.is_deleted()));
    assert!(root.cached_child(b"new0").is_some());
}

#[test]
fn ids_parse_like_linux_name_to_int() {
    assert_eq!(parse_id(b"0"), Some(0));
    assert_eq!(parse_id(b"42"), Some(42));
    for bad in [&b""[..], b"01", b"+1", b"-1", b"1a", b" 1", b"99999999999"] {
        assert_eq!(parse_id(bad), None, "{bad:?}");
    }
}

#[test]
fn cpuinfo_keeps_one_block_per_cpu() {
    let host = b"processor\t: 0\nflags\t: a\n\nprocessor\t: 1\nflags\t: a\n\nprocessor\t: 2\n\n";
    assert_eq!(
        first_blocks(host, 2),
        b"processor\t: 0\nflags\t: a\n\nprocessor\t: 1\nflags\t: a\n\n".to_vec()
    );
    assert_eq!(first_blocks(host, 9).len(), host.len());
    assert!(first_blocks(b"", 2).is_empty());
}
