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
        }
    }

    /// Privileged for id changes (`CAP_SETUID`/`CAP_SETGID`): root in the sandbox until
    /// capability sets arrive with the OCI runtime.
    pub fn is_privileged(&self) -> bool {
        self.euid == 0
    }
}
