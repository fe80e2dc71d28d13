//! The campaign dashboard: every campaign at a glance (`/campaigns`), one campaign's rounds
//! (`/campaigns/{id}`), the same data as JSON (`/api/campaigns[/{id}]`), and the same
//! campaign page as one self-contained file for a local run directory.
//!
//! Data flows one way: a source (the App's store, or a local run directory) produces plain
//! [`model::CampaignSnapshot`]s; pure builders ([`view`]) turn them into views; templates
//! and hand-written SVG ([`render`], [`svg`]) turn views into HTML. Pages carry derived
//! numbers and the committed titles and reasons (scrubbed), never logs or artifact text.

pub mod access;
pub mod http;
pub mod local;
pub mod model;
pub mod render;
pub mod svg;
pub mod usage;
pub mod view;
