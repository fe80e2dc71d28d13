//! Process exit codes of every `sota-bot` command (listed in the README): the command-line
//! front end and the entry points that live beside their domain (`runner preflight`) share
//! them from here, so no domain module reaches up into `cli`.

/// Success.
pub const EXIT_OK: i32 = 0;
/// A runtime failure (I/O, process, network).
pub const EXIT_FAILURE: i32 = 1;
/// Input that failed to parse or validate.
pub const EXIT_INVALID_INPUT: i32 = 2;
/// A domain verdict that is not "ok" (for example a gate that blocks, or unfit GPUs).
pub const EXIT_VERDICT: i32 = 3;
/// A campaign stopped after its fixed baseline because it cannot be measured (no SGLang
/// result, or no result of any selected competitor).
pub const EXIT_UNMEASURABLE: i32 = 4;
