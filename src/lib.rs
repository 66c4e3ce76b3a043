//! roomgate: an identity-aware edge proxy with webhook-to-queue ingestion.
//!
//! The library holds everything; `main.rs` is only the command line.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod config;
pub mod error;
pub mod forward;
pub mod headers;
pub mod proxy;
pub mod route;
pub mod run;
pub mod sensitive;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod webhook;
