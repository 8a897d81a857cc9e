//! Credentials: real, effective, saved and filesystem ids, as in credentials(7).

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub ruid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    /// Capability sets (capabilities(7)); bits 0..=CAP_LAST_CAP.
    pub cap_effective: u64,
    pub cap_permitted: u64,
    pub cap_inheritable: u64,
    /// The bounding set: what execve may grant (`PR_CAPBSET_DROP` shrinks it).
    pub cap_bounding: u64,
    /// The ambient set: kept across `execve` of an unprivileged program
    /// (`PR_CAP_AMBIENT`); always within permitted and inheritable.
    pub cap_ambient: u64,
    /// `PR_SET_KEEPCAPS`: leaving uid 0 keeps the permitted set.
    pub keep_caps: bool,
}

/// Linux's highest capability number (CAP_CHECKPOINT_RESTORE).
pub const CAP_LAST_CAP: u32 = 40;

/// Every capability.
pub const CAP_FULL: u64 = (1u64 << (CAP_LAST_CAP + 1)) - 1;

impl Credentials {
    pub fn new(uid: u32, gid: u32) -> Credentials {
        Credentials {
            ruid: uid,
            euid: uid,
            suid: uid,
            fsuid: uid,
            rgid: gid,
            egid: gid,
            sgid: gid,
            fsgid: gid,
            groups: Vec::new(),
            // Root starts with every capability; others with none (no file capabilities).
            cap_effective: if uid == 0 { CAP_FULL } else { 0 },
            cap_permitted: if uid == 0 { CAP_FULL } else { 0 },
            cap_inheritable: 0,
            cap_bounding: CAP_FULL,
            cap_ambient: 0,
            keep_caps: false,
        }
    }

    /// What file permission checks use: the filesystem ids, the groups and the
    /// effective capabilities.
    pub fn fs_creds(&self) -> crate::vfs::Creds {
        crate::vfs::Creds {
            uid: self.fsuid,
            gid: self.fsgid,
            groups: self.groups.clone(),
            caps: self.cap_effective,
        }
    }

    /// The ids after `execve` of a program with set-user-ID (`setuid`: the file's
    /// owner) and/or set-group-ID (`setgid`: the file's group) bits: the effective id
    /// becomes the file's, and the saved and filesystem ids follow the effective ones
    /// (`bprm_fill_uid`, `cap_bprm_creds_from_file`). The capability sets follow in
    /// [`Credentials::exec_transform`].
    pub fn exec_set_ids(&mut self, setuid: Option<u32>, setgid: Option<u32>) {
        if let Some(u) = setuid {
            self.euid = u;
        }
        if let Some(g) = setgid {
            self.egid = g;
        }
        self.suid = self.euid;
        self.fsuid = self.euid;
        self.sgid = self.egid;
        self.fsgid = self.egid;
        // A set-ID execution cancels the ambient set.
        if setuid.is_some() || setgid.is_some() {
            self.cap_ambient = 0;
        }
    }

    /// The capability sets after `execve` of a file without file capabilities
    /// (`cap_bprm_creds_from_file`): root (real or effective uid 0) gets the bounding
    /// set plus its inheritable capabilities, all effective for an effective uid 0;
    /// anyone else keeps only the ambient set, permitted and effective.
    /// `PR_SET_KEEPCAPS` does not survive exec.
    pub fn exec_transform(&mut self) {
        let root = self.ruid == 0 || self.euid == 0;
        let base = if root {
            self.cap_bounding | self.cap_inheritable
        } else {
            0
        };
        self.cap_permitted = base | self.cap_ambient;
        self.cap_effective = if self.euid == 0 {
            self.cap_permitted
        } else {
            self.cap_ambient
        };
        self.keep_caps = false;
    }

    /// `capable(cap)`: is `cap` in the effective set?
    pub fn has_cap(&self, cap: u32) -> bool {
        cap <= CAP_LAST_CAP && self.cap_effective & (1u64 << cap) != 0
    }

    /// Change the user ids, adjusting the capability sets as Linux does for a process
    /// without `SECBIT_NO_SETUID_FIXUP` (`cap_emulate_setxuid`, `cap_task_fix_setuid`):
    /// leaving uid 0 in all of real, effective and saved drops every capability; an
    /// effective uid leaving 0 empties the effective set, one coming back to 0 refills it
    /// from the permitted set; the filesystem uid does the same for the filesystem
    /// capabilities. `keep_caps` is `PR_SET_KEEPCAPS`: the permitted set survives.
    pub fn set_uids(&mut self, ruid: u32, euid: u32, suid: u32, fsuid: u32, keep_caps: bool) {
        let old = self.clone();
        self.ruid = ruid;
        self.euid = euid;
        self.suid = suid;
        self.fsuid = fsuid;
        let was_root = old.ruid == 0 || old.euid == 0 || old.suid == 0;
        if was_root && ruid != 0 && euid != 0 && suid != 0 {
            if !keep_caps {
                self.cap_permitted = 0;
            }
            self.cap_effective = 0;
            self.cap_ambient = 0;
        }
        if old.euid == 0 && euid != 0 {
            self.cap_effective = 0;
        }
        if old.euid != 0 && euid == 0 {
            self.cap_effective = self.cap_permitted;
        }
        if old.fsuid == 0 && fsuid != 0 {
            self.cap_effective &= !CAP_FS_MASK;
        } else if old.fsuid != 0 && fsuid == 0 {
            self.cap_effective |= self.cap_permitted & CAP_FS_MASK;
        }
    }
}

pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_LINUX_IMMUTABLE: u32 = 9;
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_KILL: u32 = 5;
pub const CAP_SYS_PTRACE: u32 = 19;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_NICE: u32 = 23;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_WAKE_ALARM: u32 = 35;
pub const CAP_MKNOD: u32 = 27;
pub const CAP_MAC_OVERRIDE: u32 = 32;

/// The capabilities that follow the filesystem uid (`CAP_FS_MASK`).
pub const CAP_FS_MASK: u64 = (1 << CAP_CHOWN)
    | (1 << CAP_DAC_OVERRIDE)
    | (1 << CAP_DAC_READ_SEARCH)
    | (1 << CAP_FOWNER)
    | (1 << CAP_FSETID)
    | (1 << CAP_LINUX_IMMUTABLE)
    | (1 << CAP_MKNOD)
    | (1 << CAP_MAC_OVERRIDE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_uid_changes_and_exec() {
        let mut c = Credentials::new(0, 0);
        // The filesystem uid leaving 0 takes only the filesystem capabilities.
        c.set_uids(0, 0, 0, 1000, false);
        assert_eq!(c.cap_effective, CAP_FULL & !CAP_FS_MASK);
        c.set_uids(0, 0, 0, 0, false);
        assert_eq!(c.cap_effective, CAP_FULL);
        // The effective uid leaving 0 empties the effective set; coming back refills it.
        c.set_uids(0, 1000, 0, 1000, false);
        assert_eq!((c.cap_effective, c.cap_permitted), (0, CAP_FULL));
        c.set_uids(0, 0, 0, 0, false);
        assert_eq!(c.cap_effective, CAP_FULL);
        // Leaving 0 everywhere drops everything, unless PR_SET_KEEPCAPS.
        let mut kept = c.clone();
        c.set_uids(1000, 1000, 1000, 1000, false);
        assert_eq!((c.cap_effective, c.cap_permitted), (0, 0));
        kept.set_uids(1000, 1000, 1000, 1000, true);
        assert_eq!((kept.cap_effective, kept.cap_permitted), (0, CAP_FULL));
        // execve: a user keeps nothing; root gets the bounding set back.
        kept.exec_transform();
        assert_eq!(kept.cap_permitted, 0);
        let mut root = Credentials::new(0, 0);
        root.cap_effective = 0;
        root.cap_permitted = 0;
        root.cap_bounding = CAP_FULL & !(1 << CAP_CHOWN);
        root.exec_transform();
        assert_eq!(root.cap_effective, CAP_FULL & !(1 << CAP_CHOWN));
        assert!(!root.has_cap(CAP_CHOWN) && root.has_cap(CAP_FOWNER));
    }
}
