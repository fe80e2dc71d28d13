//! GitHub edge: webhook signatures and payload types, App authentication, and a REST client
//! (octocrab over tower layers carrying GitHub's retry and rate-limit rules) behind the
//! `GitHubApi` trait.

pub mod api;
pub mod app_client;
pub mod auth;
pub mod client;
pub mod clock;
pub mod events;
pub mod layers;
pub mod manifest;
pub mod markers;
pub mod permissions;
pub mod ratelimit;
pub mod signature;
pub mod urls;

pub use api::{GitHubApi, Permission, RepoName, RestGitHubApi};
pub use client::{ClientConfig, ClientMetrics, GitHubError, HttpTransport};
pub use clock::{Clock, ManualClock, SystemClock};
