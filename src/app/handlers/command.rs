//! `/sota` commands from writers (the router checked the permission): start a request,
//! report status, stop, hold, resume, continue with a note, retry a failed step. Each
//! command gets one reply (keyed by the comment) and refreshes the status comment.

use super::dispatch::dispatch;
use super::request::{is_request_issue, start, RequestIssue, Starter};
use super::shared::{marker, read_state, reply, update_status};
use super::Ctx;
use crate::app::refusal::Refusal;
use crate::app::render;
use crate::app::store::{AppPhase, CampaignRecord, RoundNote};
use crate::campaign::state::Phase;
use crate::server::commands::Command;
use crate::server::handler::{CommandContext, HandlerError};

/// Acts on one command and answers it.
pub(crate) async fn on_command(
    ctx: Ctx<'_>,
    today: chrono::NaiveDate,
    cmd: &CommandContext,
    command: &Command,
) -> Result<(), HandlerError> {
    let api = ctx.api;
    let answer = marker("", &format!("{}@{}", command.name(), cmd.comment_id), None);
    if *command == Command::Start {
        // An explicit start of the request issue this comment is on, as it reads now.
        let Some(issue) = cmd.issue_details.as_ref().filter(|i| is_request_issue(i)) else {
            let body = render::refusal(&Refusal::NotARequest);
            return reply(api, &cmd.repo, cmd.issue, &answer, &body).await;
        };
        let request = RequestIssue::new(
            cmd.repo.clone(),
            issue,
            Some(&cmd.default_branch),
            cmd.repo_private,
        );
        let starter = Starter {
            login: &cmd.sender,
            explicit: true,
            installation_id: cmd.installation_id,
            today,
        };
        return start(ctx, &request, &starter).await;
    }
    let Some(mut c) = campaign_of(ctx, cmd)? else {
        let body = "There is no sota-bot campaign on this issue or pull request.";
        return reply(api, &cmd.repo, cmd.issue, &answer, body).await;
    };
    let body = answer_command(ctx, &mut c, &cmd.sender, command).await?;
    reply(api, &cmd.repo, cmd.issue, &answer, &body).await?;
    let state = read_state(ctx, &c).await.ok().flatten();
    update_status(api, &c, state.as_ref()).await
}

/// The campaign of the issue (or, on a pull request, the PR) the comment is on.
fn campaign_of(ctx: Ctx<'_>, cmd: &CommandContext) -> Result<Option<CampaignRecord>, HandlerError> {
    let repo = cmd.repo.to_string();
    Ok(match ctx.store.by_issue(&repo, cmd.issue)? {
        Some(c) => Some(c),
        None if cmd.is_pull_request => ctx.store.by_pull(&repo, cmd.issue)?,
        None => None,
    })
}

/// Carries out `command` on campaign `c`; returns the reply.
async fn answer_command(
    ctx: Ctx<'_>,
    c: &mut CampaignRecord,
    sender: &str,
    command: &Command,
) -> Result<String, HandlerError> {
    Ok(match command {
        Command::Status => {
            let state = read_state(ctx, c).await?;
            render::status_comment(c, state.as_ref())
        }
        Command::Stop => {
            if c.phase.is_active() {
                c.phase = AppPhase::Stopped;
                ctx.store.update(c)?;
                format!(
                    "Campaign `{}` stopped by @{sender}; no further rounds will be dispatched.",
                    c.id
                )
            } else {
                format!(
                    "Campaign `{}` is already over: {}.",
                    c.id,
                    render::phase_line(c)
                )
            }
        }
        Command::Hold => {
            c.held = true;
            ctx.store.update(c)?;
            format!(
                "Campaign `{}` is on hold: the running step finishes, then no further round is dispatched until you comment `/sota resume`.",
                c.id
            )
        }
        Command::Resume => {
            c.held = false;
            ctx.store.update(c)?;
            if c.phase == AppPhase::Waiting {
                continue_campaign(ctx, c, None).await?
            } else {
                format!("Campaign `{}` resumed.", c.id)
            }
        }
        Command::Continue { note } => {
            if c.phase == AppPhase::Waiting {
                c.held = false;
                continue_campaign(ctx, c, note.as_deref()).await?
            } else {
                format!(
                    "Campaign `{}` is not waiting ({}); nothing to continue.",
                    c.id,
                    render::phase_line(c)
                )
            }
        }
        Command::Retry => {
            if c.phase == AppPhase::Failed {
                c.retries = 0;
                let round = c.round;
                dispatch(ctx, c, round).await?;
                format!("Re-dispatched the {} workflow.", render::step_name(round))
            } else if c.phase == AppPhase::Waiting {
                // A campaign held after failed agent rounds: run the agent again.
                c.held = false;
                continue_campaign(ctx, c, None).await?
            } else {
                format!(
                    "Nothing to retry: campaign `{}` is {}.",
                    c.id,
                    render::phase_line(c)
                )
            }
        }
        Command::Help => crate::server::commands::help_text(),
        // Answered before any campaign is looked up.
        Command::Start => "This request's campaign has already started.".to_string(),
    })
}

/// Dispatches the next round of a waiting campaign, with the maintainer's note for its
/// agent when there is one; returns the reply.
async fn continue_campaign(
    ctx: Ctx<'_>,
    c: &mut CampaignRecord,
    note: Option<&str>,
) -> Result<String, HandlerError> {
    let state = read_state(ctx, c).await?;
    let next = state
        .as_ref()
        .map(|s| s.next_round())
        .unwrap_or(c.round + 1);
    if state.as_ref().is_some_and(|s| s.phase == Phase::Stopped) {
        return Ok(format!("Campaign `{}` has already stopped.", c.id));
    }
    let mut reply = format!("Dispatched round {next} of `{}`.", c.id);
    if let Some(text) = note.map(str::trim).filter(|t| !t.is_empty()) {
        let kept = crate::engine::round::cap_note(text);
        reply.push_str(" Your note goes into its agent prompt");
        if kept.len() != text.len() {
            let max = crate::engine::round::MAX_MAINTAINER_NOTE_CHARS;
            reply.push_str(&format!(", cut at {max} characters"));
        }
        reply.push('.');
        c.dispatch.maintainer_note = Some(RoundNote {
            round: next,
            text: kept,
        });
    }
    dispatch(ctx, c, next).await?;
    Ok(reply)
}
