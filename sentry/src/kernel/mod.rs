//! The kernel: tasks, thread groups, credentials, signals, the task loop.

pub mod task;

pub use task::Task;
