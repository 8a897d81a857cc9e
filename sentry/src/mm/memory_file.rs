//! The MemoryFile: one memfd per sandbox holding all application memory.

/// Placeholder until the allocator lands.
pub struct MemoryFile {}
