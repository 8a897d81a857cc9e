//! Filesystem implementations: tmpfs, dev, the gofer client filesystem, host fds.
