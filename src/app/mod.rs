//! The campaign side of the GitHub App (`sota-bot serve`): campaign start from request
//! issues, the round lifecycle driven by workflow completions, `/sota` commands and
//! reconciliation, over the same engine types the local campaigns and runners use.

pub mod dashboard;
pub mod handlers;
pub mod refusal;
pub mod render;
pub mod service;
pub mod store;
pub mod store_views;

pub use service::AppCampaigns;
pub use store::{AppPhase, CampaignRecord, CampaignStore};
