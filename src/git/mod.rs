//! git

pub mod push;
