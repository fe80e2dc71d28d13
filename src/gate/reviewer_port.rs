//! The reviewer port: what the gate asks an LLM reviewer and how asking can fail. Its two
//! implementations sit above it: the HTTP reviewer (`reviewer.rs`) and a coding-agent CLI
//! (`cli_reviewer.rs`).

use serde::{Deserialize, Serialize};

/// What the reviewer is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewerPrompt {
    pub system: String,
    pub user: String,
}

/// Why a reviewer gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewerError {
    #[error("reviewer request to {url} failed: {message}")]
    Http { url: String, message: String },
    #[error("reviewer at {url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("reviewer answer from {url} is not a chat completion: {message}")]
    Shape { url: String, message: String },
}

/// The reviewer port: anything that turns a prompt into review text.
pub trait Reviewer {
    fn review(&self, prompt: &ReviewerPrompt) -> Result<String, ReviewerError>;
}
