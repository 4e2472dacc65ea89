//! The sync engine's pure logic: what to fetch and what to delete ([`plan`]), running one sync
//! over a POP3 session ([`engine`]), what to do when a server says "not now" ([`retry`]), and
//! when each account may sign in again ([`schedule`]).
//!
//! Nothing here touches a socket, a clock or a store: callers pass the server's listing, what
//! the store knows and the current time, and get decisions back. The browser and the native
//! tests drive the same logic.

pub mod engine;
pub mod plan;
pub mod rate;
pub mod retry;
pub mod schedule;

pub use engine::{Batch, Engine, EngineConfig, Fetched, Progress, Report, SyncError, SyncEvent};
pub use plan::{
    listing, plan, Fetch, FetchMode, Known, KnownState, Listed, Plan, PlanError, PlanOptions,
    ServerPolicy,
};
pub use rate::RateMeter;
pub use retry::{advise, next_check, Advice, StopReason};
pub use schedule::{countdown, Decision, Failure, Gate, Scheduler};
