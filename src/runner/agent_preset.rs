//! Agent presets: how each supported coding agent is started headless for one round.
//!
//! `claude` (Claude Code) and `codex` (Codex CLI) get a complete non-interactive invocation:
//! the round prompt on standard input, permission to edit files and run commands in the
//! checkout (Claude Code: `acceptEdits` plus an allow-list of its editing and shell tools, so
//! nothing waits for a person; Codex: the `workspace-write` sandbox, which confines writes to
//! the checkout), the model, the turn limit and machine-readable output that
//! [`super::agent_usage`] reads back. `command` runs any shell line, as before presets existed,
//! with the prompt on standard input as well.

use serde::{Deserialize, Serialize};

/// Which agent a round runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentPreset {
    /// Claude Code (`claude -p`).
    #[default]
    Claude,
    /// Codex CLI (`codex exec`).
    Codex,
    /// Any shell command line.
    Command,
}

impl AgentPreset {
    pub const NAMES: &'static [&'static str] = &["claude", "codex", "command"];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentPreset::Claude => "claude",
            AgentPreset::Codex => "codex",
            AgentPreset::Command => "command",
        }
    }

    /// Reads a preset name (case-insensitive; `claude-code` is accepted for `claude`).
    pub fn parse(s: &str) -> Option<AgentPreset> {
        match s.trim().to_ascii_lowercase().as_str() {
            "claude" | "claude-code" | "claude_code" => Some(AgentPreset::Claude),
            "codex" => Some(AgentPreset::Codex),
            "command" | "shell" => Some(AgentPreset::Command),
            _ => None,
        }
    }

    /// The executable a preset runs when none is configured.
    pub fn default_program(self) -> &'static str {
        match self {
            AgentPreset::Claude => "claude",
            AgentPreset::Codex => "codex",
            AgentPreset::Command => "sh",
        }
    }

    /// How to install the preset's CLI (for error messages).
    pub fn install_hint(self) -> &'static str {
        match self {
            AgentPreset::Claude => "npm install -g @anthropic-ai/claude-code",
            AgentPreset::Codex => "npm install -g @openai/codex",
            AgentPreset::Command => "install the program your agent command runs",
        }
    }

    /// The environment variable a preset's CLI reads its API key from by default.
    pub fn default_key_env(self) -> Option<&'static str> {
        match self {
            AgentPreset::Claude => Some("ANTHROPIC_API_KEY"),
            AgentPreset::Codex => Some("OPENAI_API_KEY"),
            AgentPreset::Command => None,
        }
    }
}

/// The configured agent: a preset and its settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSpec {
    pub preset: AgentPreset,
    /// `command`: the shell line (placeholders as in [`super::agent::expand_command`]);
    /// `claude`/`codex`: the executable, when it is not `claude`/`codex` on `PATH`.
    pub command: Option<String>,
    /// Model name passed to the CLI (`--model` / `-m`); the CLI's default when absent.
    pub model: Option<String>,
    /// Most agent turns per round (Claude Code `--max-turns`; Codex has no such limit and
    /// is bounded by the round timeout).
    pub max_turns: Option<u32>,
    /// Model endpoint: Claude Code's `ANTHROPIC_BASE_URL`, or the base URL of an
    /// OpenAI Responses-compatible provider for Codex.
    pub base_url: Option<String>,
    /// Environment variable holding the API key, when it is not the CLI's own default
    /// (`ANTHROPIC_API_KEY` / `OPENAI_API_KEY`).
    pub api_key_env: Option<String>,
}

/// What the agent port starts: a program, its arguments and extra environment.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentLaunch {
    pub preset: AgentPreset,
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Claude Code tools a headless round may use without asking: read, search, edit and run
/// commands. File edits are confined to the working directory by `acceptEdits`.
pub const CLAUDE_ALLOWED_TOOLS: &str = "Bash,Edit,MultiEdit,Write,Read,Glob,Grep,LS,TodoWrite";

/// Name of the provider sota-bot configures for Codex when a base URL is given.
const CODEX_PROVIDER: &str = "sota";

impl AgentSpec {
    /// A `command` preset running `line`.
    pub fn shell(line: impl Into<String>) -> AgentSpec {
        AgentSpec {
            preset: AgentPreset::Command,
            command: Some(line.into()),
            ..AgentSpec::default()
        }
    }

    /// Builds a spec from optional settings: without a preset, a command line means the
    /// `command` preset and nothing at all means Claude Code.
    pub fn from_parts(preset: Option<AgentPreset>, command: Option<String>) -> AgentSpec {
        let command = command.filter(|c| !c.trim().is_empty());
        let preset = preset.unwrap_or(if command.is_some() {
            AgentPreset::Command
        } else {
            AgentPreset::Claude
        });
        AgentSpec {
            preset,
            command,
            ..AgentSpec::default()
        }
    }

    /// This spec with command-line overrides applied (a given command without a preset
    /// switches to the `command` preset, as on its own).
    pub fn overridden(
        mut self,
        preset: Option<AgentPreset>,
        command: Option<String>,
        model: Option<String>,
        max_turns: Option<u32>,
    ) -> AgentSpec {
        let command = command.filter(|c| !c.trim().is_empty());
        if preset.is_some() || command.is_some() {
            let base = AgentSpec::from_parts(preset, command.or(self.command.take()));
            self.preset = base.preset;
            self.command = base.command;
        }
        if model.is_some() {
            self.model = model;
        }
        if max_turns.is_some() {
            self.max_turns = max_turns;
        }
        self
    }

    /// The program that must exist on `PATH` before a round may start.
    pub fn program(&self) -> String {
        match self.preset {
            AgentPreset::Command => "sh".into(),
            p => self
                .command
                .clone()
                .filter(|c| !c.trim().is_empty())
                .unwrap_or_else(|| p.default_program().into()),
        }
    }

    /// A one-line description for reports (`claude (model x, max 30 turns)`).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = &self.model {
            parts.push(format!("model {m}"));
        }
        if let Some(t) = self.max_turns {
            parts.push(format!("max {t} turns"));
        }
        let head = match self.preset {
            AgentPreset::Command => {
                format!("command `{}`", self.command.as_deref().unwrap_or("").trim())
            }
            p => p.as_str().to_string(),
        };
        if parts.is_empty() {
            head
        } else {
            format!("{head} ({})", parts.join(", "))
        }
    }

    /// The invocation for this spec. `expanded_command` is the `command` preset's line with
    /// its placeholders already substituted; `checkout` is the agent's working root.
    pub fn launch(&self, expanded_command: Option<&str>, checkout: &str) -> AgentLaunch {
        let mut env = Vec::new();
        let mut args: Vec<String> = Vec::new();
        let push = |args: &mut Vec<String>, items: &[&str]| {
            args.extend(items.iter().map(|s| s.to_string()));
        };
        match self.preset {
            AgentPreset::Command => {
                push(&mut args, &["-c"]);
                args.push(expanded_command.unwrap_or_default().to_string());
            }
            AgentPreset::Claude => {
                push(
                    &mut args,
                    &[
                        "-p",
                        "--output-format",
                        "json",
                        "--permission-mode",
                        "acceptEdits",
                        "--allowedTools",
                        CLAUDE_ALLOWED_TOOLS,
                        "--no-session-persistence",
                    ],
                );
                if let Some(t) = self.max_turns {
                    args.push("--max-turns".into());
                    args.push(t.to_string());
                }
                if let Some(m) = &self.model {
                    args.push("--model".into());
                    args.push(m.clone());
                }
                // Only the model API: no telemetry, update checks or error reporting from a
                // GPU runner.
                env.push((
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
                    "1".into(),
                ));
                if let Some(u) = &self.base_url {
                    env.push(("ANTHROPIC_BASE_URL".into(), u.clone()));
                }
                if let Some(k) = self
                    .api_key_env
                    .as_deref()
                    .filter(|k| *k != "ANTHROPIC_API_KEY")
                {
                    if let Ok(v) = std::env::var(k) {
                        env.push(("ANTHROPIC_API_KEY".into(), v));
                    }
                }
            }
            AgentPreset::Codex => {
                push(
                    &mut args,
                    &[
                        "exec",
                        "--json",
                        "--sandbox",
                        "workspace-write",
                        "--ephemeral",
                        "--cd",
                    ],
                );
                args.push(checkout.to_string());
                let (model_args, model_env) = self.codex_model_args();
                args.extend(model_args);
                env.extend(model_env);
                // `-`: the prompt comes from standard input.
                args.push("-".into());
            }
        }
        AgentLaunch {
            preset: self.preset,
            program: self.program(),
            args,
            env,
        }
    }
}

impl AgentSpec {
    /// Codex's model and provider flags (and the key variable it reads), shared by the
    /// agent and the reviewer invocations.
    pub fn codex_model_args(&self) -> (Vec<String>, Vec<(String, String)>) {
        let mut args = Vec::new();
        let mut env = Vec::new();
        if let Some(m) = &self.model {
            args.push("--model".into());
            args.push(m.clone());
        }
        if let Some(u) = &self.base_url {
            let key = self
                .api_key_env
                .clone()
                .unwrap_or_else(|| "OPENAI_API_KEY".into());
            for kv in [
                format!("model_provider={CODEX_PROVIDER}"),
                format!("model_providers.{CODEX_PROVIDER}.name={CODEX_PROVIDER}"),
                format!("model_providers.{CODEX_PROVIDER}.base_url={u}"),
                format!("model_providers.{CODEX_PROVIDER}.wire_api=\"responses\""),
                format!("model_providers.{CODEX_PROVIDER}.env_key={key}"),
            ] {
                args.push("-c".into());
                args.push(kv);
            }
        } else if let Some(k) = self
            .api_key_env
            .as_deref()
            .filter(|k| *k != "OPENAI_API_KEY")
        {
            if let Ok(v) = std::env::var(k) {
                env.push(("OPENAI_API_KEY".into(), v));
            }
        }
        (args, env)
    }
}

/// Finds `program` on `PATH` (or as a path), the way a shell would.
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_exec(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_gets_prompt_on_stdin_permissions_turns_model_and_json() {
        let spec = AgentSpec {
            preset: AgentPreset::Claude,
            model: Some("claude-sonnet-4-5".into()),
            max_turns: Some(40),
            base_url: Some("http://127.0.0.1:9".into()),
            ..AgentSpec::default()
        };
        let l = spec.launch(None, "/co");
        assert_eq!(l.program, "claude");
        let line = l.args.join(" ");
        assert!(line.starts_with("-p --output-format json --permission-mode acceptEdits"));
        assert!(line.contains("--allowedTools Bash,Edit"));
        assert!(line.contains("--max-turns 40"));
        assert!(line.contains("--model claude-sonnet-4-5"));
        assert!(l
            .env
            .contains(&("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:9".into())));
        assert!(l
            .env
            .iter()
            .any(|(k, v)| k == "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC" && v == "1"));
    }

    #[test]
    fn codex_runs_exec_in_the_workspace_sandbox_with_a_provider() {
        let spec = AgentSpec {
            preset: AgentPreset::Codex,
            model: Some("gpt-5-codex".into()),
            base_url: Some("http://127.0.0.1:9/v1".into()),
            api_key_env: Some("SIM_KEY".into()),
            ..AgentSpec::default()
        };
        let l = spec.launch(None, "/co");
        assert_eq!(l.program, "codex");
        assert_eq!(
            &l.args[..8],
            [
                "exec",
                "--json",
                "--sandbox",
                "workspace-write",
                "--ephemeral",
                "--cd",
                "/co",
                "--model"
            ]
        );
        assert!(l
            .args
            .contains(&"model_providers.sota.base_url=http://127.0.0.1:9/v1".to_string()));
        assert!(l
            .args
            .contains(&"model_providers.sota.env_key=SIM_KEY".to_string()));
        assert_eq!(l.args.last().map(String::as_str), Some("-"));
    }

    #[test]
    fn command_preset_is_a_shell_line() {
        let l = AgentSpec::shell("echo {round}").launch(Some("echo 3"), "/co");
        assert_eq!(
            (l.program.as_str(), l.args.as_slice()),
            ("sh", &["-c".to_string(), "echo 3".to_string()][..])
        );
        assert_eq!(AgentSpec::shell("x").describe(), "command `x`");
    }

    #[test]
    fn parts_and_overrides() {
        assert_eq!(
            AgentSpec::from_parts(None, None).preset,
            AgentPreset::Claude
        );
        assert_eq!(
            AgentSpec::from_parts(None, Some("./agent.sh".into())).preset,
            AgentPreset::Command
        );
        let s = AgentSpec::from_parts(Some(AgentPreset::Codex), None).overridden(
            None,
            None,
            Some("gpt-5-codex".into()),
            Some(9),
        );
        assert_eq!(
            (s.preset, s.model.as_deref(), s.max_turns),
            (AgentPreset::Codex, Some("gpt-5-codex"), Some(9))
        );
        let s = s.overridden(None, Some("sota-bot sim agent".into()), None, None);
        assert_eq!(s.preset, AgentPreset::Command);
        let s = s.overridden(Some(AgentPreset::Claude), None, None, None);
        assert_eq!(
            s.program(),
            "sota-bot sim agent",
            "a preset keeps the given executable"
        );
    }

    #[test]
    fn names_parse() {
        for n in AgentPreset::NAMES {
            assert_eq!(AgentPreset::parse(n).map(|p| p.as_str()), Some(*n));
        }
        assert_eq!(AgentPreset::parse("Claude-Code"), Some(AgentPreset::Claude));
        assert_eq!(AgentPreset::parse("cursor"), None);
    }

    #[test]
    fn programs_are_found_on_path_or_not() {
        assert!(find_program("sh").is_some());
        assert!(find_program("sota-bot-no-such-agent").is_none());
        assert!(find_program("/nonexistent/claude").is_none());
    }
}
