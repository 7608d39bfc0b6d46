//! Test support shared by the harness, the integration tests and the benchmarks: what a person
//! does on the reference server's development login page, done without a browser, and a
//! deterministic random source. Neither the core nor the server depends on it.

pub mod devlogin;
pub mod rng;
