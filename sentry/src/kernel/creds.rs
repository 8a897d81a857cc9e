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
}

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
        }
    }

    /// Privileged for id changes (`CAP_SETUID`/`CAP_SETGID`): root in the sandbox until
    /// capability sets arrive with the OCI runtime.
    pub fn is_privileged(&self) -> bool {
        self.euid == 0
    }
}
