//! Secret scrubbing for everything sota-bot writes (logs, artifacts, comments, commits).
