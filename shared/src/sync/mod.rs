//! The sync engine's pure logic: what to fetch and what to delete ([`plan`]), running one sync
//! over a POP3 session ([`engine`]), the one loop that runs it between a connection and a store
//! ([`host`]), what to do when a server says "not now" ([`retry`]), and
//! when each account may sign in again ([`schedule`]).
//!
//! Nothing here touches a socket, a clock or a store directly: callers pass the server's
//! listing, what the store knows and the current time, and get decisions back. The host loop
//! runs over the one [`crate::connection::Connection`], generic over its transport, and reaches
//! the store through a trait ([`host::MailStore`]), so the browser and the native tests run the
//! same loop.

pub mod engine;
pub mod host;
pub mod plan;
pub mod rate;
pub mod retry;
pub mod schedule;

pub use engine::{
    Batch, Engine, EngineConfig, Fetched, Progress, Report, StoreFault, SyncError, SyncEvent,
};
pub use plan::{
    listing, plan, Fetch, FetchMode, Known, KnownState, Listed, Plan, PlanError, PlanOptions,
    ServerPolicy,
};
pub use rate::RateMeter;
pub use retry::{advise, next_check, Advice, StopReason};
pub use schedule::{countdown, Decision, Failure, Gate, Scheduler};
