//! runner

pub mod agent;
