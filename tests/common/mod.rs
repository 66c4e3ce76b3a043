//! Support shared by the integration tests: real servers on free ports.
#![allow(dead_code)]

pub mod redis;
