//! runner

pub mod preflight;
