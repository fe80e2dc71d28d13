//! Campaign domain: request, framework selection, run directory, manifest, state (pure, no
//! I/O).

pub mod issue_form;
pub mod ledger;
pub mod manifest;
pub mod options;
pub mod repo_config;
pub mod request;
pub mod request_yaml;
pub mod resolve;
pub mod run_dir;
pub mod selection;
pub mod slug;
pub mod state;
pub mod suggest;
pub mod workload;
pub mod yaml_lines;

pub use options::{Autonomy, Precision, PrimaryMetric};
pub use repo_config::RepoConfig;
pub use request::{CampaignRequest, ProblemKind, RequestProblem};
pub use resolve::{Resolution, ResolvedCampaign};
pub use run_dir::RunDir;
pub use selection::{FrameworkAvailability, FrameworkChoice, FrameworkSelection};
pub use workload::{DatasetKind, Scenario, WorkloadSpec};
