//! The consumer role: group membership, fetching, handling records, committing, idle exit.

pub mod assignor;
pub mod dispatch;
pub mod failure;
pub mod fetcher;
pub mod group;
pub mod handler;
pub mod message;
pub mod progress;
pub mod run;
