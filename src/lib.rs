//! roomgate: an identity-aware edge proxy with webhook-to-queue ingestion.
//!
//! The library holds everything; `main.rs` is only the command line. Pure decisions live
//! in `route`, `headers`, `auth`, `webhook` and `config`; I/O lives in `server`, `forward`,
//! `kv` (the shared Redis), `queue`, `secret` and `admin`; `proxy` composes them for one
//! request.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admission;
pub mod assertion;
pub mod auth;
pub mod body;
pub mod canonical;
pub mod config;
pub mod conn;
pub mod cookies;
pub mod cpu;
pub mod deadline;
pub mod embed;
pub mod error;
pub mod forward;
pub mod forwarded;
pub mod fuzzing;
pub mod headers;
pub mod ingest;
pub mod kv;
pub mod pages;
pub mod pool;
pub mod probe;
pub mod proxy;
pub mod queue;
pub mod ratelimit;
pub mod route;
pub mod run;
pub mod secret;
pub mod sensitive;
pub mod server;
pub mod signin;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod webhook;
pub mod websocket;
