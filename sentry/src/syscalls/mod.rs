//! System call dispatch and one module per family.
