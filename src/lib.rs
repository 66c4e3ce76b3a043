//! roomgate: an identity-aware edge proxy with webhook-to-queue ingestion.
//!
//! The library holds everything; `main.rs` is only the command line.
#![forbid(unsafe_code)]

pub mod config;
pub mod queue;
pub mod route;
pub mod secret;
pub mod sensitive;
pub mod webhook;
