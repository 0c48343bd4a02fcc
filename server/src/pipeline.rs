//! The one path a command takes from any entry point (the `domshell_execute` tool, the
//! debug route) to the extension: split the input into lines, check each line with the
//! policy, record it in the audit log (before it runs, and its outcome after), execute it
//! over the bridge — in that order, under one budget for the whole call.
//!
//! It owns the rules of a call: the call parameters that act like commands (`initial_url`,
//! `group_id: "new"`) are checked with, and travel on, the first line that is sent, and only
//! once; a lane the extension created is joined by the later lines; after a link failure the
//! remaining lines are not run blind. It must not know how results are shown (MCP content
//! blocks, HTTP JSON): callers format the [`CallOutcome`] themselves.

use std::time::{Duration, Instant};

use shared_protocol::grammar::split_lines;
use shared_protocol::tier::NEW_LANE;
use tokio_util::sync::CancellationToken;

use crate::bridge::{Bridge, BridgeError, ExecuteRequest};
use crate::policy::audit::{AuditEntry, AuditLog};
use crate::policy::{CallParams, Policy};

/// The lane of a call that named none: the caller's own session.
pub const SHARED_LANE: &str = "shared";

/// The lane marker of a call whose `group_id: "new"` could not be made: it ran nowhere.
pub const MINT_FAILED_LANE: &str = "none (the new lane was not made)";

/// Everything a command needs on its way to the extension.
pub struct Pipeline {
    pub bridge: Bridge,
    pub policy: Policy,
    pub audit: Option<std::sync::Arc<AuditLog>>,
}

/// The rails granted to an admitted relay's host (tiers, domains) when they differ from this
/// server's own. Its commands are still recorded in this server's audit log; the relay
/// records them in its host's log itself.
#[derive(Debug)]
pub struct Rails {
    pub policy: Policy,
}

/// One call: one or more command lines and the parameters that come with them.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// The caller's own rails; `None`: the pipeline's.
    pub rails: Option<std::sync::Arc<Rails>>,
    /// The shell session the lines run in.
    pub session: String,
    /// One or more commands separated by newlines (see `split_lines`).
    pub input: String,
    /// `"new"` creates a lane, `"shared"`/`None` is the session's default, anything else
    /// joins that lane.
    pub group_id: Option<String>,
    /// With a new lane: the page it opens.
    pub initial_url: Option<String>,
    /// With a new lane: its name.
    pub group_name: Option<String>,
    /// With a new lane: the window it opens in.
    pub window_id: Option<i64>,
    /// The MCP client's label (`name/version`), recorded on lanes it mints.
    pub agent: Option<String>,
    /// Where the extension's progress reports of each line go (`None`: nobody listens).
    pub progress: Option<crate::bridge::ProgressSink>,
    /// The whole call must finish within this.
    pub budget: Duration,
}

/// Why a line did not produce the command's own answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stable machine-readable cause (`tier_denied`, `extension_link_lost`, …).
    pub reason: String,
    pub retryable: bool,
    /// What the caller should do about it.
    pub hint: String,
}

impl Failure {
    fn from_bridge(err: &BridgeError) -> Self {
        Self {
            reason: err.reason().into(),
            retryable: err.retryable(),
            hint: err.hint().into(),
        }
    }
}

/// Outcome of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineResult {
    pub line: String,
    /// The command succeeded in the extension.
    pub ok: bool,
    /// The command's output, or the error text for the caller.
    pub output: String,
    /// Set when the line failed for a reason other than the command's own error (denied,
    /// not run, link lost, …).
    pub failure: Option<Failure>,
}

/// Outcome of a whole call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    pub lines: Vec<LineResult>,
    /// The lane the call ran in (`shared` when none).
    pub lane: String,
}

impl CallOutcome {
    pub fn all_ok(&self) -> bool {
        self.lines.iter().all(|l| l.ok)
    }
}

/// The files an `upload` line names, read from the policy's upload directories; none for
/// any other line.
fn upload_files(
    line: &str,
    policy: &Policy,
) -> Result<Vec<shared_protocol::frame::UploadFile>, crate::uploads::UploadRefusal> {
    let Ok(shared_protocol::grammar::Line::Pipeline(pipeline)) =
        shared_protocol::grammar::parse_line(line)
    else {
        return Ok(Vec::new());
    };
    let command = &pipeline.command;
    if command.name != "upload" || command.wants_help() {
        return Ok(Vec::new());
    }
    let args = command
        .parse_args()
        .map_err(|_| crate::uploads::UploadRefusal::Usage)?;
    let paths = args.positional.get(1..).unwrap_or_default();
    crate::uploads::load(policy.upload_dirs(), paths)
}

/// Input with no command in it.
pub fn empty_input_failure() -> Failure {
    Failure {
        reason: "empty_command".into(),
        retryable: false,
        hint: "Send at least one command, e.g. `tabs`; run `help` for the list.".into(),
    }
}

/// Where the lane parameters stand during a call.
enum LaneParams {
    /// Wherever the session is: nothing to send.
    Default,
    /// The user's tabs, said on every line.
    Shared,
    /// Join this existing lane on every line.
    Join(String),
    /// Create a lane with the first line that is sent (checked with each line until then).
    Create {
        /// `new`, `shared` or none, as the caller gave it.
        group_id: Option<String>,
        initial_url: Option<String>,
        group_name: Option<String>,
        window_id: Option<i64>,
    },
}

impl LaneParams {
    fn new(call: &Call) -> Self {
        let blank = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let group_id = call.group_id.as_deref().map(str::trim);
        match group_id {
            None | Some("") | Some(SHARED_LANE) => {
                let group_id = group_id.filter(|g| *g == SHARED_LANE).map(str::to_string);
                // `initial_url` without a new lane still opens a page with the first line.
                match blank(&call.initial_url) {
                    Some(url) => Self::Create {
                        group_id,
                        initial_url: Some(url),
                        group_name: None,
                        window_id: None,
                    },
                    None if group_id.is_some() => Self::Shared,
                    None => Self::Default,
                }
            }
            Some(NEW_LANE) => Self::Create {
                group_id: Some(NEW_LANE.to_string()),
                initial_url: blank(&call.initial_url),
                group_name: blank(&call.group_name),
                window_id: call.window_id,
            },
            Some(lane) => Self::Join(lane.to_string()),
        }
    }

    /// What the policy must check with the next line.
    fn check_params<'a>(&'a self, call: &'a Call) -> CallParams<'a> {
        match self {
            Self::Create { initial_url, .. } => CallParams {
                initial_url: initial_url.as_deref(),
                group_id: call
                    .group_id
                    .as_deref()
                    .filter(|g| g.trim() == NEW_LANE)
                    .map(|_| NEW_LANE),
            },
            _ => CallParams::default(),
        }
    }
}

impl Pipeline {
    /// Run every line of `call` in order. `on_line` hears which line starts (for progress).
    /// Empty input is a [`Failure`] before anything runs.
    pub async fn run(
        &self,
        call: Call,
        cancel: &CancellationToken,
        on_line: &(dyn Fn(usize, &str) + Send + Sync),
    ) -> Result<CallOutcome, Failure> {
        let lines = split_lines(&call.input);
        if lines.is_empty() {
            return Err(empty_input_failure());
        }
        let rails = call.rails.clone();
        let policy = rails.as_ref().map_or(&self.policy, |r| &r.policy);
        let audit = self.audit.as_deref();
        // A budget no clock can add is as good as none; it must not panic.
        let now = Instant::now();
        let deadline = now
            .checked_add(call.budget)
            .unwrap_or_else(|| now + Duration::from_millis(crate::config::MAX_TIMING_MS));
        let mut lane_params = LaneParams::new(&call);
        let mut results: Vec<LineResult> = Vec::with_capacity(lines.len());
        let mut lane: Option<String> = None;
        let mut stop: Option<Failure> = None;
        for (index, line) in lines.iter().enumerate() {
            on_line(index, line);
            if let Some(failure) = &stop {
                results.push(LineResult {
                    line: line.clone(),
                    ok: false,
                    output: format!(
                        "Error: not run: an earlier line failed with {}.",
                        failure.reason
                    ),
                    failure: Some(failure.clone()),
                });
                continue;
            }
            let started = Instant::now();
            let params = lane_params.check_params(&call);
            let audit_params = match &lane_params {
                LaneParams::Join(lane) => AuditParams {
                    initial_url: None,
                    group_id: Some(lane.clone()),
                },
                _ => AuditParams::from(params),
            };
            let tier = match policy.check(line, params) {
                Ok(classification) => classification.tier_label(),
                Err(denial) => {
                    audit_line(
                        audit,
                        &call.session,
                        line,
                        denial.tier_label(),
                        "denied",
                        started,
                        Some(denial.message.clone()),
                        &audit_params,
                    );
                    results.push(LineResult {
                        line: line.clone(),
                        ok: false,
                        output: format!("Error: {}", denial.message),
                        failure: Some(Failure {
                            reason: denial.reason.to_string(),
                            retryable: false,
                            hint: denial.hint.clone(),
                        }),
                    });
                    continue;
                }
            };
            // `upload` carries the files it names, read here, from the upload directories
            // only; a refusal is the line's answer and nothing is sent.
            let files = match upload_files(line, policy) {
                Ok(files) => files,
                Err(refusal) => {
                    let message = format!("upload: {refusal}");
                    audit_line(
                        audit,
                        &call.session,
                        line,
                        tier,
                        "denied",
                        started,
                        Some(message.clone()),
                        &audit_params,
                    );
                    results.push(LineResult {
                        line: line.clone(),
                        ok: false,
                        output: format!("Error: {message}"),
                        failure: Some(Failure {
                            reason: "upload_refused".into(),
                            retryable: false,
                            hint: "Put the files in a directory the server's --upload-dir names and give their paths relative to it.".into(),
                        }),
                    });
                    continue;
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let failure = Failure {
                    reason: "call_budget_exhausted".into(),
                    retryable: true,
                    hint: "Send the remaining lines in another call.".into(),
                };
                results.push(LineResult {
                    line: line.clone(),
                    ok: false,
                    output: format!(
                        "Error: not run: the call used its {} ms budget.",
                        call.budget.as_millis()
                    ),
                    failure: Some(failure.clone()),
                });
                stop = Some(failure);
                continue;
            }
            let (group_id, initial_url, group_name, window_id) = match &lane_params {
                LaneParams::Default => (None, None, None, None),
                LaneParams::Shared => (Some(SHARED_LANE.to_string()), None, None, None),
                LaneParams::Join(lane) => (Some(lane.clone()), None, None, None),
                LaneParams::Create {
                    group_id,
                    initial_url,
                    group_name,
                    window_id,
                } => (
                    group_id.clone(),
                    initial_url.clone(),
                    group_name.clone(),
                    *window_id,
                ),
            };
            let request = ExecuteRequest {
                session: call.session.clone(),
                command: line.clone(),
                group_id,
                initial_url,
                group_name,
                window_id,
                timeout: Some(remaining),
                allowed_domains: policy.domains().to_vec(),
                agent: call.agent.clone(),
                progress: call.progress.clone(),
                files,
            };
            let sent_params = matches!(lane_params, LaneParams::Create { .. });
            // Recorded before it runs: a server killed mid-command still leaves a trace of
            // what it was doing. The outcome follows in a second record.
            audit_line(
                audit,
                &call.session,
                line,
                tier,
                "started",
                started,
                None,
                &audit_params,
            );
            let result = self.bridge.execute(request, cancel).await;
            if sent_params {
                // The lane (or the initial page) was asked for once; it is never minted again.
                // Later lines join the lane the extension reports, if it made one.
                lane_params = match result.as_ref().ok().and_then(|o| o.lane.clone()) {
                    Some(created) => LaneParams::Join(created),
                    None => LaneParams::Default,
                };
                // A mint that failed leaves the session where it was, which may be a lane
                // of its own: later lines must not run there unasked (nor in the user's
                // tabs when the caller asked for a new lane).
                if call.group_id.as_deref().map(str::trim) == Some(NEW_LANE)
                    && matches!(lane_params, LaneParams::Default)
                {
                    lane = Some(MINT_FAILED_LANE.into());
                    stop = Some(Failure {
                        reason: "lane_mint_failed".into(),
                        retryable: false,
                        hint: "The new lane could not be made (the first line's error says why); nothing ran in any other lane. Fix the cause and call again with group_id \"new\".".into(),
                    });
                }
            }
            match result {
                Ok(outcome) => {
                    // The lane the session is in after the line, failed or not: the last
                    // line's is where the next call without a group_id runs.
                    if lane.as_deref() != Some(MINT_FAILED_LANE) {
                        lane = Some(outcome.lane.clone().unwrap_or_else(|| SHARED_LANE.into()));
                    }
                    audit_line(
                        audit,
                        &call.session,
                        line,
                        tier,
                        if outcome.ok { "ok" } else { "error" },
                        started,
                        None,
                        &audit_params,
                    );
                    results.push(LineResult {
                        line: line.clone(),
                        ok: outcome.ok,
                        output: outcome.output,
                        failure: None,
                    });
                }
                Err(err) => {
                    audit_line(
                        audit,
                        &call.session,
                        line,
                        tier,
                        err.reason(),
                        started,
                        Some(err.to_string()),
                        &audit_params,
                    );
                    let failure = Failure::from_bridge(&err);
                    results.push(LineResult {
                        line: line.clone(),
                        ok: false,
                        output: format!("Error: {err}. {}", err.hint()),
                        failure: Some(failure.clone()),
                    });
                    // The link is gone or the client gave up: later lines must not run blind
                    // (a later click may depend on an earlier one that may not have happened).
                    if err.ends_call() {
                        stop = Some(failure);
                    }
                }
            }
        }
        let lane = lane
            .or_else(|| match LaneParams::new(&call) {
                LaneParams::Join(lane) => Some(lane),
                _ => None,
            })
            .unwrap_or_else(|| SHARED_LANE.into());
        Ok(CallOutcome {
            lines: results,
            lane,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn audit_line(
    audit: Option<&AuditLog>,
    session: &str,
    line: &str,
    tier: &str,
    outcome: &str,
    started: Instant,
    detail: Option<String>,
    params: &AuditParams,
) {
    if let Some(audit) = audit {
        audit.record(AuditEntry {
            session: session.to_string(),
            tier: tier.to_string(),
            command: line.to_string(),
            outcome: outcome.to_string(),
            duration_ms: started.elapsed().as_millis() as u64,
            detail,
            initial_url: params.initial_url.clone(),
            group_id: params.group_id.clone(),
        });
    }
}

/// The call parameters recorded with the line that carried them.
struct AuditParams {
    initial_url: Option<String>,
    group_id: Option<String>,
}

impl From<CallParams<'_>> for AuditParams {
    fn from(params: CallParams<'_>) -> Self {
        Self {
            initial_url: params.initial_url.map(str::to_string),
            group_id: params.group_id.map(str::to_string),
        }
    }
}
