//! The extension's connection manager as a sans-IO state machine: when to dial, what to send,
//! when to abandon a socket, and what state to show.
//!
//! It owns the reconnect policy. It must not touch WebSockets, timers or storage: the worker
//! glue feeds it [`Event`]s with `now_ms` and carries out the [`Effect`]s it returns, then arms
//! one timer for [`Link::next_wakeup`]. Each socket has a generation number; events from an
//! abandoned generation are ignored, which is what lets the machine dial a new socket at once
//! while Chromium is still (for up to a minute) failing to close a half-open old one.
//!
//! It also owns the extension's half of the handshake: it never sends the token, only a
//! proof over the server's `CHALLENGE` nonce and its own (random bytes the glue passes in
//! with [`Event::SocketOpen`]), and it accepts no frame until `WELCOME` proved that the
//! server knows the token too. A server that cannot prove it is abandoned and retried with
//! backoff.

use shared_protocol::backoff::Backoff;
use shared_protocol::close::CloseCode;
use shared_protocol::frame::{Frame, FrameError};
use shared_protocol::handshake::{prove, verify, Nonce, ResumeTicket, Role, NONCE_BYTES};
use shared_protocol::link::LinkState;
use shared_protocol::liveness::{Action, Liveness, LivenessConfig};
use shared_protocol::{MAX_FRAME_BYTES, PROTOCOL_VERSION};

use crate::settings::{Settings, Status};

/// Time allowed from `new WebSocket()` to `WELCOME`; a dial into a black hole must not wait
/// for the OS connect timeout.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// After another browser profile replaced this connection, wait this long before taking the
/// bridge back, so two profiles do not evict each other in a tight loop.
pub const REPLACED_RETRY_MS: u64 = 30_000;
/// A link up this long counts as healthy: its loss redials at once and resets the backoff.
pub const STABLE_LINK_MS: u64 = 10_000;

const REFUSED_DETAIL: &str = "The server refused the token: paste the output of `domshell token` in the extension options and save (saving again retries the same token).";
/// After the server refused us unchecked (too many wrong tokens from somewhere), wait this
/// long: its window has to pass.
pub const THROTTLED_RETRY_MS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Settings were loaded at worker start or changed in storage.
    Settings(Settings),
    /// The heartbeat alarm fired (it also wakes a suspended worker).
    Alarm,
    /// The timer armed for [`Link::next_wakeup`] fired.
    Timer,
    /// The socket opened. `nonce` is fresh random from the browser's
    /// `crypto.getRandomValues`: this connection's half of the handshake nonces.
    SocketOpen {
        gen: u64,
        nonce: [u8; NONCE_BYTES],
    },
    SocketMessage {
        gen: u64,
        text: String,
    },
    SocketClosed {
        gen: u64,
        code: u16,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Open a WebSocket to `url`, tagging its events with `gen`.
    Dial { gen: u64, url: String },
    /// Send a text frame on socket `gen`.
    Send { gen: u64, text: String },
    /// Detach every handler of socket `gen` and close it without waiting for `onclose`.
    Abandon { gen: u64 },
    /// Hand a frame that is not about the link (EXECUTE, CANCEL, SESSION_*) to the shell.
    Deliver { gen: u64, frame: Frame },
    /// The status changed: write it where the options page reads it.
    Persist(Status),
    /// Keep this resume ticket (from `WELCOME`) in storage for the next worker.
    StoreResumeTicket(String),
    /// The server refused this token: remember it across worker restarts.
    RememberRefusal(crate::settings::Refusal),
    /// The server proved itself and the link is up; it announces its live sessions next
    /// (lanes of sessions it does not announce within `silence_limit_ms` are reaped).
    LinkUp { silence_limit_ms: u64 },
}

#[derive(Debug, Clone)]
enum Phase {
    Disabled,
    /// No token configured, or the server refused ours: do not dial until settings change.
    Unauthorized {
        detail: String,
    },
    /// Waiting to dial at `at`.
    Waiting {
        at: u64,
        detail: String,
    },
    /// Socket created, waiting for `onopen`, `CHALLENGE` and then `WELCOME`.
    Dialing {
        gen: u64,
        since: u64,
        handshake: Handshake,
    },
    Connected {
        gen: u64,
        liveness: Box<Liveness>,
        since: u64,
    },
}

/// How far the handshake on a dialing socket got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handshake {
    /// `onopen` has not fired.
    Unopened,
    /// Open; our nonce is drawn, waiting for the server's `CHALLENGE`.
    Opened { ours: Nonce },
    /// `HELLO` sent; waiting for a `WELCOME` that proves the server knows the token.
    Proved { ours: Nonce, server: Nonce },
}

pub struct Link {
    settings: Settings,
    phase: Phase,
    backoff: Backoff,
    next_gen: u64,
    rng: u64,
    last_inbound_at: Option<u64>,
    last_rtt_ms: Option<u64>,
    /// Connections that reached WELCOME.
    welcomes: u64,
    version: String,
    last_status: Option<(LinkState, String)>,
    /// From the last `WELCOME` (or storage): lets the server recognise us during a flood of
    /// wrong guesses from elsewhere.
    resume: Option<ResumeTicket>,
    /// How long the current link must stay up to count as healthy: [`STABLE_LINK_MS`], or the
    /// server's silence limit when that is shorter (tests run with short timings).
    stable_after_ms: u64,
}

impl Link {
    /// A machine with no settings yet (disabled until [`Event::Settings`] arrives). `seed`
    /// feeds the jitter of the backoff.
    pub fn new(version: &str, seed: u64) -> Self {
        Self {
            settings: Settings {
                enabled: false,
                ..Settings::default()
            },
            phase: Phase::Disabled,
            backoff: Backoff::default(),
            next_gen: 0,
            rng: seed | 1,
            last_inbound_at: None,
            last_rtt_ms: None,
            welcomes: 0,
            version: version.to_string(),
            last_status: None,
            stable_after_ms: STABLE_LINK_MS,
            resume: None,
        }
    }

    fn random_unit(&mut self) -> f64 {
        // xorshift64*: enough to spread retries; no crate needed in the worker.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn next_backoff(&mut self) -> u64 {
        let unit = self.random_unit();
        self.backoff.next_delay_ms(unit)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn state(&self, now_ms: u64) -> LinkState {
        match &self.phase {
            Phase::Disabled => LinkState::Disabled,
            Phase::Unauthorized { .. } => LinkState::Unauthorized,
            Phase::Waiting { .. } => LinkState::Reconnecting,
            Phase::Dialing { .. } => LinkState::Connecting,
            Phase::Connected { liveness, .. } if liveness.is_quiet(now_ms) => LinkState::Silent,
            Phase::Connected { .. } => LinkState::Connected,
        }
    }

    /// The generation of the socket that is currently in use, if any.
    pub fn current_gen(&self) -> Option<u64> {
        match &self.phase {
            Phase::Dialing { gen, .. } | Phase::Connected { gen, .. } => Some(*gen),
            _ => None,
        }
    }

    /// When the glue must deliver [`Event::Timer`] next.
    pub fn next_wakeup(&self) -> Option<u64> {
        match &self.phase {
            Phase::Disabled | Phase::Unauthorized { .. } => None,
            Phase::Waiting { at, .. } => Some(*at),
            Phase::Dialing { since, .. } => Some(since + HANDSHAKE_TIMEOUT_MS),
            Phase::Connected { liveness, .. } => Some(liveness.next_deadline()),
        }
    }

    pub fn handle(&mut self, event: Event, now_ms: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        match event {
            Event::Settings(settings) => self.on_settings(settings, now_ms, &mut effects),
            Event::Alarm | Event::Timer => self.on_tick(now_ms, &mut effects),
            Event::SocketOpen { gen, nonce } => {
                // Nothing is sent on open: the server speaks first (CHALLENGE).
                if let Phase::Dialing {
                    gen: current,
                    handshake,
                    ..
                } = &mut self.phase
                {
                    if *current == gen && *handshake == Handshake::Unopened {
                        *handshake = Handshake::Opened { ours: Nonce(nonce) };
                    }
                }
            }
            Event::SocketMessage { gen, text } => self.on_message(gen, &text, now_ms, &mut effects),
            Event::SocketClosed { gen, code, reason } => {
                self.on_closed(gen, code, &reason, now_ms, &mut effects)
            }
        }
        self.push_status(now_ms, &mut effects);
        effects
    }

    fn on_settings(&mut self, settings: Settings, now_ms: u64, effects: &mut Vec<Effect>) {
        let redial = self.settings.needs_redial(&settings)
            || matches!(self.phase, Phase::Disabled | Phase::Unauthorized { .. });
        if self.resume.is_none() {
            self.resume = settings
                .resume_ticket
                .as_deref()
                .and_then(ResumeTicket::parse);
        }
        self.settings = settings;
        if !redial {
            return;
        }
        self.abandon_current(effects);
        self.backoff.reset();
        if self.settings.enabled
            && !self.settings.token.expose().is_empty()
            && self.settings.token_known_refused()
        {
            self.phase = Phase::Unauthorized {
                detail: REFUSED_DETAIL.into(),
            };
            return;
        }
        self.start_dial_or_idle(now_ms, effects);
    }

    fn start_dial_or_idle(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        if !self.settings.enabled {
            self.phase = Phase::Disabled;
        } else if self.settings.token.expose().is_empty() {
            self.phase = Phase::Unauthorized {
                detail: "No token set: run `domshell token` and paste it in the extension options."
                    .into(),
            };
        } else {
            self.dial(now_ms, effects);
        }
    }

    fn dial(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        self.next_gen += 1;
        let gen = self.next_gen;
        effects.push(Effect::Dial {
            gen,
            url: self.settings.bridge_url(),
        });
        self.phase = Phase::Dialing {
            gen,
            since: now_ms,
            handshake: Handshake::Unopened,
        };
    }

    fn abandon_current(&mut self, effects: &mut Vec<Effect>) {
        if let Some(gen) = self.current_gen() {
            effects.push(Effect::Abandon { gen });
        }
    }

    /// Drop the current socket (if any) and wait `delay_ms` before the next dial.
    fn retry_after(
        &mut self,
        delay_ms: u64,
        now_ms: u64,
        detail: String,
        effects: &mut Vec<Effect>,
    ) {
        self.abandon_current(effects);
        if delay_ms == 0 {
            self.dial(now_ms, effects);
        } else {
            self.phase = Phase::Waiting {
                at: now_ms + delay_ms,
                detail,
            };
        }
    }

    fn on_tick(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        enum Next {
            Nothing,
            Dial,
            HandshakeTimedOut { challenged: bool, opened: bool },
            Dead(u64),
        }
        let next = match &mut self.phase {
            Phase::Disabled | Phase::Unauthorized { .. } => Next::Nothing,
            Phase::Waiting { at, .. } if now_ms >= *at => Next::Dial,
            Phase::Waiting { .. } => Next::Nothing,
            Phase::Dialing {
                since, handshake, ..
            } if now_ms >= *since + HANDSHAKE_TIMEOUT_MS => Next::HandshakeTimedOut {
                challenged: matches!(handshake, Handshake::Proved { .. }),
                opened: *handshake != Handshake::Unopened,
            },
            Phase::Dialing { .. } => Next::Nothing,
            Phase::Connected { liveness, .. } => match liveness.poll(now_ms) {
                Action::Dead { silent_for_ms } => Next::Dead(silent_for_ms),
                _ => Next::Nothing,
            },
        };
        match next {
            Next::Nothing => {}
            Next::Dial => self.dial(now_ms, effects),
            Next::HandshakeTimedOut { challenged, opened } => {
                let delay = self.next_backoff();
                let detail = if opened && !challenged {
                    self.no_challenge_detail()
                } else {
                    "The server did not answer the handshake; retrying.".into()
                };
                self.retry_after(delay, now_ms, detail, effects);
            }
            // The peer is gone or the path is half-open. Do not wait for onclose (Chromium may
            // take a minute on a half-open socket): dial now. A link that lived through a whole
            // silence limit was working, so this is never the tight loop the backoff prevents.
            Next::Dead(silent_for_ms) => {
                if self.was_stable(now_ms) {
                    self.backoff.reset();
                }
                self.retry_after(
                    0,
                    now_ms,
                    format!("Nothing heard for {silent_for_ms} ms; reconnecting."),
                    effects,
                )
            }
        }
    }

    fn on_message(&mut self, gen: u64, text: &str, now_ms: u64, effects: &mut Vec<Effect>) {
        if self.current_gen() != Some(gen) {
            return;
        }
        // Any frame, even one we cannot parse, is proof that the peer is alive.
        self.last_inbound_at = Some(now_ms);
        if let Phase::Connected { liveness, .. } = &mut self.phase {
            liveness.on_inbound(now_ms);
        }
        let frame = match Frame::decode(text, MAX_FRAME_BYTES) {
            Ok(frame) => frame,
            Err(
                FrameError::UnknownType(_) | FrameError::Malformed(_) | FrameError::TooLarge { .. },
            ) => {
                return;
            }
        };
        let handshake = match &self.phase {
            Phase::Dialing { handshake, .. } => Some(*handshake),
            _ => None,
        };
        match (handshake, frame) {
            (Some(Handshake::Opened { ours }), Frame::Challenge { protocol, nonce }) => {
                self.on_challenge(gen, ours, protocol, nonce, effects)
            }
            (
                Some(Handshake::Proved { ours, server }),
                Frame::Welcome {
                    silence_limit_ms,
                    proof,
                    resume,
                    ..
                },
            ) => {
                if !verify(
                    self.settings.token.expose(),
                    Role::Server,
                    &server,
                    &ours,
                    &proof,
                ) {
                    let delay = self.next_backoff();
                    let detail = format!(
                        "The program on port {} could not prove it knows the token, so nothing from it is accepted; retrying. If domshell is not running there, another program holds the port.",
                        self.settings.port
                    );
                    self.retry_after(delay, now_ms, detail, effects);
                    return;
                }
                // The backoff is reset only once this link has stayed up a while: a server
                // that welcomes and then drops us must not be redialled in a tight loop.
                self.welcomes += 1;
                self.stable_after_ms = STABLE_LINK_MS.min(silence_limit_ms.max(1));
                if self.resume.as_ref() != Some(&resume) {
                    effects.push(Effect::StoreResumeTicket(resume.as_str().to_string()));
                    self.resume = Some(resume);
                }
                effects.push(Effect::LinkUp {
                    silence_limit_ms: silence_limit_ms.max(1),
                });
                self.phase = Phase::Connected {
                    gen,
                    since: now_ms,
                    liveness: Box::new(Liveness::new(
                        LivenessConfig {
                            ping_interval_ms: None,
                            silence_limit_ms: silence_limit_ms.max(1),
                        },
                        now_ms,
                    )),
                };
            }
            // Anything else before the server proved itself is not trusted: a WELCOME that
            // answers no HELLO of ours is an impostor's.
            (Some(_), Frame::Welcome { .. }) => {
                let delay = self.next_backoff();
                let detail = format!(
                    "The program on port {} skipped the domshell handshake; it is not a domshell server this extension can trust. Retrying.",
                    self.settings.port
                );
                self.retry_after(delay, now_ms, detail, effects);
            }
            (Some(_), _) => {}
            (None, frame) => self.on_connected_frame(gen, frame, effects),
        }
    }

    /// Answer the server's `CHALLENGE` with our proof, or give up on a server of another
    /// protocol version.
    fn on_challenge(
        &mut self,
        gen: u64,
        ours: Nonce,
        protocol: u32,
        server: Nonce,
        effects: &mut Vec<Effect>,
    ) {
        if protocol != PROTOCOL_VERSION {
            self.abandon_current(effects);
            let side = if protocol > PROTOCOL_VERSION {
                "the domshell extension"
            } else {
                "the domshell server"
            };
            self.phase = Phase::Unauthorized {
                detail: format!(
                    "The server speaks protocol {protocol} and this extension {PROTOCOL_VERSION}: update {side}."
                ),
            };
            return;
        }
        let hello = Frame::Hello {
            protocol: PROTOCOL_VERSION,
            version: self.version.clone(),
            capabilities: vec!["shell".into()],
            nonce: ours,
            proof: prove(
                self.settings.token.expose(),
                Role::Extension,
                &server,
                &ours,
            ),
            resume: self.resume.as_ref().and_then(|t| t.claim(&server)),
        };
        if let Ok(text) = hello.encode() {
            effects.push(Effect::Send { gen, text });
        }
        if let Phase::Dialing { handshake, .. } = &mut self.phase {
            *handshake = Handshake::Proved { ours, server };
        }
    }

    fn no_challenge_detail(&self) -> String {
        format!(
            "The program on port {} did not start the domshell handshake: it is an older domshell server (update it) or not domshell at all.",
            self.settings.port
        )
    }

    /// A frame on an authenticated connection.
    fn on_connected_frame(&mut self, gen: u64, frame: Frame, effects: &mut Vec<Effect>) {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return;
        }
        match frame {
            Frame::Ping {
                id, last_rtt_ms, ..
            } => {
                if last_rtt_ms.is_some() {
                    self.last_rtt_ms = last_rtt_ms;
                }
                if let Ok(text) = (Frame::Pong { id }).encode() {
                    effects.push(Effect::Send { gen, text });
                }
            }
            frame @ (Frame::Execute { .. }
            | Frame::Cancel { .. }
            | Frame::SessionStart { .. }
            | Frame::SessionEnd { .. }) => effects.push(Effect::Deliver { gen, frame }),
            _ => {}
        }
    }

    fn on_closed(
        &mut self,
        gen: u64,
        code: u16,
        reason: &str,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        if self.current_gen() != Some(gen) {
            return;
        }
        let was_connected = matches!(self.phase, Phase::Connected { .. });
        let unchallenged = matches!(
            self.phase,
            Phase::Dialing {
                handshake: Handshake::Opened { .. },
                ..
            }
        );
        match CloseCode::from_code(code) {
            Some(CloseCode::Throttled) => {
                let detail = format!(
                    "The server is refusing connections after too many wrong tokens from somewhere ({reason}); retrying in {} s.",
                    THROTTLED_RETRY_MS / 1000
                );
                self.retry_after(THROTTLED_RETRY_MS, now_ms, detail, effects);
            }
            // Closed before it ever sent CHALLENGE (a version-1 server waits for a HELLO with
            // the token in it, then gives up): say so rather than "cannot reach".
            code if unchallenged && code != Some(CloseCode::ServerShutdown) => {
                let delay = self.next_backoff();
                let detail = self.no_challenge_detail();
                self.retry_after(delay, now_ms, detail, effects);
            }
            Some(CloseCode::BadToken) => {
                self.abandon_current(effects);
                let refusal = self.settings.refusal();
                self.settings.refused_for = Some(refusal.clone());
                effects.push(Effect::RememberRefusal(refusal));
                self.phase = Phase::Unauthorized {
                    detail: REFUSED_DETAIL.into(),
                };
            }
            Some(CloseCode::ProtocolMismatch) => {
                self.abandon_current(effects);
                self.phase = Phase::Unauthorized {
                    detail: format!("Server and extension speak different protocol versions ({reason}): update the older one."),
                };
            }
            Some(CloseCode::Replaced) => {
                let detail =
                    "Another browser or profile took over the bridge; retrying later.".to_string();
                self.retry_after(
                    REPLACED_RETRY_MS.max(self.settings.alarm_period_ms),
                    now_ms,
                    detail,
                    effects,
                );
            }
            _ => {
                // A connection that had been working for a while gets one immediate redial
                // (the server may have just restarted); failed dials and links that dropped
                // soon after WELCOME back off.
                let delay = if was_connected && self.was_stable(now_ms) {
                    self.backoff.reset();
                    0
                } else {
                    self.next_backoff()
                };
                let detail = if was_connected {
                    format!("Connection closed ({code}); reconnecting.")
                } else {
                    format!(
                        "Cannot reach the server on port {}; is `domshell serve` running?",
                        self.settings.port
                    )
                };
                self.retry_after(delay, now_ms, detail, effects);
            }
        }
    }

    /// The current link has been up for [`STABLE_LINK_MS`].
    fn was_stable(&self, now_ms: u64) -> bool {
        matches!(self.phase, Phase::Connected { since, .. } if now_ms.saturating_sub(since) >= self.stable_after_ms)
    }

    /// The status for the options page, stamped with wall-clock `now_ms`.
    pub fn status(&self, now_ms: u64) -> Status {
        let state = self.state(now_ms);
        let detail = match &self.phase {
            Phase::Disabled => "The bridge is switched off in the extension options.".to_string(),
            Phase::Unauthorized { detail } | Phase::Waiting { detail, .. } => detail.clone(),
            Phase::Dialing { .. } => format!("Connecting to 127.0.0.1:{}…", self.settings.port),
            Phase::Connected { .. } if state == LinkState::Silent => {
                "The server has been quiet; checking the connection.".to_string()
            }
            Phase::Connected { .. } => "Connected to the domshell server.".to_string(),
        };
        Status {
            state,
            detail,
            port: self.settings.port,
            last_inbound_at: self.last_inbound_at,
            connected_since: match &self.phase {
                Phase::Connected { since, .. } => Some(*since),
                _ => None,
            },
            last_rtt_ms: self.last_rtt_ms,
            reconnects: self.welcomes.saturating_sub(1),
            updated_at: now_ms,
        }
    }

    fn push_status(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        let status = self.status(now_ms);
        let key = (status.state, status.detail.clone());
        let pinged = effects
            .iter()
            .any(|e| matches!(e, Effect::Send { text, .. } if text.contains("\"PONG\"")));
        if self.last_status.as_ref() != Some(&key) || pinged {
            self.last_status = Some(key);
            effects.push(Effect::Persist(status));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tok";
    const SERVER_NONCE: Nonce = Nonce([0x5e; NONCE_BYTES]);

    fn settings(token: &str) -> Settings {
        Settings {
            enabled: true,
            token: shared_protocol::frame::Secret(token.into()),
            port: 9876,
            alarm_period_ms: 1_000,
            resume_ticket: None,
            saved_at: 0,
            refused_for: None,
        }
    }

    /// The nonce the glue hands in when socket `gen` opens.
    fn our_nonce(gen: u64) -> [u8; NONCE_BYTES] {
        [gen as u8; NONCE_BYTES]
    }

    fn challenge() -> String {
        Frame::Challenge {
            protocol: PROTOCOL_VERSION,
            nonce: SERVER_NONCE,
        }
        .encode()
        .unwrap()
    }

    /// A WELCOME from a server that knows `token`, for the handshake on socket `gen`.
    fn welcome_from(token: &str, gen: u64, silence: u64) -> String {
        Frame::Welcome {
            protocol: PROTOCOL_VERSION,
            server_version: "t".into(),
            ping_interval_ms: silence / 3,
            silence_limit_ms: silence,
            proof: prove(token, Role::Server, &SERVER_NONCE, &Nonce(our_nonce(gen))),
            resume: ResumeTicket::issue(token, &[gen as u8; 16]),
        }
        .encode()
        .unwrap()
    }

    fn welcome(silence: u64) -> String {
        welcome_from(TOKEN, 1, silence)
    }

    fn sent(effects: &[Effect]) -> Vec<Frame> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { text, .. } => Some(Frame::decode(text, 100_000).unwrap()),
                _ => None,
            })
            .collect()
    }

    /// Open socket `gen`, receive CHALLENGE, return what the machine sent in answer.
    fn open_and_challenge(link: &mut Link, gen: u64, now: u64) -> Vec<Effect> {
        let fx = link.handle(
            Event::SocketOpen {
                gen,
                nonce: our_nonce(gen),
            },
            now,
        );
        assert!(sent(&fx).is_empty(), "nothing is sent before CHALLENGE");
        link.handle(
            Event::SocketMessage {
                gen,
                text: challenge(),
            },
            now,
        )
    }

    /// Run the whole handshake on socket `gen`; returns the effects of the WELCOME.
    fn handshake(link: &mut Link, gen: u64, now: u64, silence: u64) -> Vec<Effect> {
        open_and_challenge(link, gen, now);
        link.handle(
            Event::SocketMessage {
                gen,
                text: welcome_from(TOKEN, gen, silence),
            },
            now,
        )
    }

    fn dials(effects: &[Effect]) -> Vec<u64> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Dial { gen, .. } => Some(*gen),
                _ => None,
            })
            .collect()
    }

    /// Bring a machine to Connected on generation 1 at t=0.
    fn connected() -> Link {
        let mut link = Link::new("1.0", 42);
        let fx = link.handle(Event::Settings(settings("tok")), 0);
        assert_eq!(
            fx[0],
            Effect::Dial {
                gen: 1,
                url: "ws://127.0.0.1:9876/bridge".into()
            }
        );
        let fx = open_and_challenge(&mut link, 1, 0);
        let [Frame::Hello { nonce, proof, .. }] = sent(&fx)[..] else {
            panic!("HELLO expected: {fx:?}")
        };
        assert!(verify(
            TOKEN,
            Role::Extension,
            &SERVER_NONCE,
            &nonce,
            &proof
        ));
        link.handle(
            Event::SocketMessage {
                gen: 1,
                text: welcome(2_000),
            },
            0,
        );
        assert_eq!(link.state(0), LinkState::Connected);
        link
    }

    #[test]
    fn answers_ping_with_pong_and_reports_rtt() {
        let mut link = connected();
        let ping = Frame::Ping {
            id: 9,
            sent_at_ms: 1,
            last_rtt_ms: Some(4),
        }
        .encode()
        .unwrap();
        let fx = link.handle(Event::SocketMessage { gen: 1, text: ping }, 500);
        assert!(fx.contains(&Effect::Send {
            gen: 1,
            text: r#"{"type":"PONG","id":9}"#.into()
        }));
        let status = link.status(500);
        assert_eq!(status.last_rtt_ms, Some(4));
        assert_eq!(status.last_inbound_at, Some(500));
        assert!(fx.iter().any(|e| matches!(e, Effect::Persist(_))));
    }

    #[test]
    fn silence_abandons_the_socket_and_dials_at_once() {
        let mut link = connected();
        assert_eq!(link.next_wakeup(), Some(2_000));
        assert!(link
            .handle(Event::Alarm, 1_999)
            .iter()
            .all(|e| !matches!(e, Effect::Abandon { .. })));
        assert_eq!(link.state(1_500), LinkState::Silent);
        let fx = link.handle(Event::Alarm, 2_000);
        assert!(fx.contains(&Effect::Abandon { gen: 1 }));
        assert_eq!(dials(&fx), vec![2]);
        // The abandoned socket's late onclose (Chromium's one-minute delay) changes nothing.
        let fx = link.handle(
            Event::SocketClosed {
                gen: 1,
                code: 1006,
                reason: String::new(),
            },
            62_000,
        );
        assert!(dials(&fx).is_empty());
        assert_eq!(link.current_gen(), Some(2));
        // And messages from it are not proof of life for the new one.
        link.handle(
            Event::SocketMessage {
                gen: 1,
                text: welcome(2_000),
            },
            62_001,
        );
        assert_eq!(link.state(62_001), LinkState::Connecting);
    }

    #[test]
    fn failed_dials_back_off_and_a_welcome_resets() {
        let mut link = Link::new("1.0", 7);
        link.handle(Event::Settings(settings("tok")), 0);
        let mut now = 0;
        let mut delays = vec![];
        for gen in 1..=6 {
            link.handle(
                Event::SocketClosed {
                    gen,
                    code: 1006,
                    reason: String::new(),
                },
                now,
            );
            assert_eq!(link.state(now), LinkState::Reconnecting);
            let at = link.next_wakeup().unwrap();
            delays.push(at - now);
            assert!(
                dials(&link.handle(Event::Timer, at - 1)).is_empty(),
                "not before time"
            );
            now = at;
            assert_eq!(dials(&link.handle(Event::Timer, now)), vec![gen + 1]);
        }
        assert!(delays.windows(2).all(|w| w[1] >= w[0] / 2), "{delays:?}");
        assert!(delays
            .iter()
            .all(|d| *d <= shared_protocol::backoff::DEFAULT_CAP_MS));
        assert!(delays[5] >= 2_500, "{delays:?}");
        handshake(&mut link, 7, now, 2_000);
        assert_eq!(link.state(now), LinkState::Connected);
    }

    #[test]
    fn a_working_connection_that_closes_is_redialed_immediately() {
        let mut link = connected();
        // Up for the stability period (the 2 s silence limit of `connected()`).
        let fx = link.handle(
            Event::SocketClosed {
                gen: 1,
                code: 1001,
                reason: "bye".into(),
            },
            2_000,
        );
        assert_eq!(dials(&fx), vec![2]);
    }

    #[test]
    fn a_server_that_welcomes_then_drops_is_not_redialled_in_a_tight_loop() {
        let mut link = connected();
        let mut now = 0;
        let mut delays = Vec::new();
        for gen in 1..=5u64 {
            // Dropped right after WELCOME: no immediate redial, and the wait grows.
            let fx = link.handle(
                Event::SocketClosed {
                    gen,
                    code: 1001,
                    reason: "bye".into(),
                },
                now + 50,
            );
            assert!(dials(&fx).is_empty(), "cycle {gen}: {fx:?}");
            let at = link.next_wakeup().expect("a retry is scheduled");
            delays.push(at - (now + 50));
            now = at;
            assert_eq!(dials(&link.handle(Event::Timer, now)), vec![gen + 1]);
            handshake(&mut link, gen + 1, now, 2_000);
        }
        assert!(delays.iter().all(|d| *d > 0), "{delays:?}");
        assert!(
            delays[4] > delays[0],
            "the backoff survives WELCOME: {delays:?}"
        );
    }

    #[test]
    fn a_refused_token_is_remembered_across_worker_restarts() {
        let mut link = connected();
        let fx = link.handle(
            Event::SocketClosed {
                gen: 1,
                code: 4001,
                reason: "invalid token".into(),
            },
            10,
        );
        let refusal = settings("tok").refusal();
        assert!(fx.contains(&Effect::RememberRefusal(refusal)), "{fx:?}");
        // A new worker reads the remembered refusal and does not dial with that token.
        let mut restarted = Link::new("1.0", 7);
        let mut stored = settings("tok");
        stored.saved_at = 5;
        stored.refused_for = Some(stored.refusal());
        // Another token is not the refused one.
        let mut other = stored.clone();
        other.token = shared_protocol::frame::Secret("other".into());
        assert!(!other.token_known_refused());
        let fx = restarted.handle(Event::Settings(stored.clone()), 0);
        assert!(dials(&fx).is_empty(), "{fx:?}");
        assert_eq!(restarted.state(0), LinkState::Unauthorized);
        assert!(dials(&restarted.handle(Event::Alarm, 60_000)).is_empty());
        // Saving again, even the same token, tries it.
        stored.saved_at = 6;
        assert_eq!(
            dials(&restarted.handle(Event::Settings(stored), 60_001)),
            vec![1]
        );
    }

    #[test]
    fn bad_token_stops_dialing_until_settings_change() {
        let mut link = connected();
        link.handle(
            Event::SocketClosed {
                gen: 1,
                code: 4001,
                reason: "invalid token".into(),
            },
            10,
        );
        assert_eq!(link.state(10), LinkState::Unauthorized);
        assert_eq!(link.next_wakeup(), None);
        assert!(dials(&link.handle(Event::Alarm, 100_000)).is_empty());
        // Re-saving the same settings (the user pressed Save) tries again.
        assert_eq!(
            dials(&link.handle(Event::Settings(settings("tok")), 100_001)),
            vec![2]
        );
        let fx = link.handle(Event::Settings(settings("new")), 100_002);
        assert!(fx.contains(&Effect::Abandon { gen: 2 }));
        assert_eq!(dials(&fx), vec![3]);
    }

    #[test]
    fn missing_token_and_disabled_do_not_dial() {
        let mut link = Link::new("1.0", 1);
        let fx = link.handle(Event::Settings(settings("")), 0);
        assert!(dials(&fx).is_empty());
        assert_eq!(link.state(0), LinkState::Unauthorized);
        assert!(link.status(0).detail.contains("domshell token"));
        let mut off = settings("tok");
        off.enabled = false;
        link.handle(Event::Settings(off), 1);
        assert_eq!(link.state(1), LinkState::Disabled);
        assert!(dials(&link.handle(Event::Alarm, 1_000_000)).is_empty());
    }

    #[test]
    fn disabling_abandons_a_live_connection() {
        let mut link = connected();
        let mut off = settings("tok");
        off.enabled = false;
        let fx = link.handle(Event::Settings(off), 5);
        assert!(fx.contains(&Effect::Abandon { gen: 1 }));
        assert_eq!(link.state(5), LinkState::Disabled);
    }

    #[test]
    fn a_dial_into_a_black_hole_times_out() {
        let mut link = Link::new("1.0", 3);
        link.handle(Event::Settings(settings("tok")), 0);
        assert_eq!(link.next_wakeup(), Some(HANDSHAKE_TIMEOUT_MS));
        let fx = link.handle(Event::Timer, HANDSHAKE_TIMEOUT_MS);
        assert!(fx.contains(&Effect::Abandon { gen: 1 }));
        assert_eq!(link.state(HANDSHAKE_TIMEOUT_MS), LinkState::Reconnecting);
    }

    #[test]
    fn replaced_connections_wait_before_taking_the_bridge_back() {
        let mut link = connected();
        link.handle(
            Event::SocketClosed {
                gen: 1,
                code: 4003,
                reason: "replaced".into(),
            },
            0,
        );
        assert_eq!(link.next_wakeup(), Some(REPLACED_RETRY_MS));
    }

    #[test]
    fn shell_frames_are_delivered_only_when_connected() {
        let mut link = connected();
        let exec = Frame::Execute {
            id: "1".into(),
            session: "s".into(),
            command: "pwd".into(),
            group_id: None,
            initial_url: None,
            group_name: None,
            window_id: None,
            deadline_ms: None,
            allowed_domains: vec![],
            agent: None,
            files: vec![],
        };
        let fx = link.handle(
            Event::SocketMessage {
                gen: 1,
                text: exec.encode().unwrap(),
            },
            10,
        );
        assert!(fx.contains(&Effect::Deliver {
            gen: 1,
            frame: exec
        }));
        // Garbage is proof of life but delivers nothing.
        let fx = link.handle(
            Event::SocketMessage {
                gen: 1,
                text: "{nope".into(),
            },
            1_500,
        );
        assert!(!fx.iter().any(|e| matches!(e, Effect::Deliver { .. })));
        assert_eq!(link.state(1_500), LinkState::Connected);
    }

    #[test]
    fn the_token_never_leaves_the_machine() {
        let secret = "a-token-that-must-stay-home-0123456789";
        let mut link = Link::new("1.0", 5);
        let mut all = link.handle(Event::Settings(settings(secret)), 0);
        all.extend(link.handle(
            Event::SocketOpen {
                gen: 1,
                nonce: our_nonce(1),
            },
            0,
        ));
        all.extend(link.handle(
            Event::SocketMessage {
                gen: 1,
                text: challenge(),
            },
            0,
        ));
        all.extend(link.handle(
            Event::SocketMessage {
                gen: 1,
                text: welcome_from(secret, 1, 2_000),
            },
            0,
        ));
        assert_eq!(link.state(0), LinkState::Connected);
        for effect in &all {
            assert!(!format!("{effect:?}").contains(secret), "{effect:?}");
            if let Effect::Send { text, .. } = effect {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }

    #[test]
    fn a_server_that_cannot_prove_itself_is_abandoned_and_gets_nothing() {
        let mut link = Link::new("1.0", 9);
        link.handle(Event::Settings(settings(TOKEN)), 0);
        open_and_challenge(&mut link, 1, 0);
        // The impostor answers with a WELCOME proved under a token it guessed.
        let fx = link.handle(
            Event::SocketMessage {
                gen: 1,
                text: welcome_from("a-guess", 1, 2_000),
            },
            10,
        );
        assert!(fx.contains(&Effect::Abandon { gen: 1 }));
        assert!(sent(&fx).is_empty());
        assert!(!fx.iter().any(|e| matches!(e, Effect::StoreResumeTicket(_))));
        assert_eq!(link.state(10), LinkState::Reconnecting);
        let status = link.status(10);
        assert!(
            status
                .detail
                .contains("port 9876 could not prove it knows the token"),
            "{}",
            status.detail
        );
        // It is retried with backoff, not in a tight loop.
        assert!(link.next_wakeup().unwrap() > 10);
        // Frames the impostor sends afterwards reach nobody.
        let exec = Frame::Execute {
            id: "1".into(),
            session: "s".into(),
            command: "pwd".into(),
            group_id: None,
            initial_url: None,
            group_name: None,
            window_id: None,
            deadline_ms: None,
            allowed_domains: vec![],
            agent: None,
            files: vec![],
        }
        .encode()
        .unwrap();
        let fx = link.handle(Event::SocketMessage { gen: 1, text: exec }, 20);
        assert!(!fx.iter().any(|e| matches!(e, Effect::Deliver { .. })));
    }

    #[test]
    fn nothing_is_delivered_before_the_server_proved_itself() {
        let mut link = Link::new("1.0", 9);
        link.handle(Event::Settings(settings(TOKEN)), 0);
        link.handle(
            Event::SocketOpen {
                gen: 1,
                nonce: our_nonce(1),
            },
            0,
        );
        let session = Frame::SessionStart {
            id: "x".into(),
            session: "s".into(),
        }
        .encode()
        .unwrap();
        for text in [session.clone(), challenge(), session] {
            let fx = link.handle(Event::SocketMessage { gen: 1, text }, 1);
            assert!(!fx.iter().any(|e| matches!(e, Effect::Deliver { .. })));
        }
        // A WELCOME before our HELLO answers nothing of ours: abandoned.
        let mut early = Link::new("1.0", 9);
        early.handle(Event::Settings(settings(TOKEN)), 0);
        early.handle(
            Event::SocketOpen {
                gen: 1,
                nonce: our_nonce(1),
            },
            0,
        );
        let fx = early.handle(
            Event::SocketMessage {
                gen: 1,
                text: welcome(2_000),
            },
            1,
        );
        assert!(fx.contains(&Effect::Abandon { gen: 1 }));
        assert_eq!(early.state(1), LinkState::Reconnecting);
    }

    #[test]
    fn a_server_that_never_challenges_is_named_too_old_or_not_domshell() {
        // A version-1 server waits for a HELLO with the token, which never comes.
        let mut link = Link::new("1.0", 3);
        link.handle(Event::Settings(settings(TOKEN)), 0);
        link.handle(
            Event::SocketOpen {
                gen: 1,
                nonce: our_nonce(1),
            },
            0,
        );
        let fx = link.handle(Event::Timer, HANDSHAKE_TIMEOUT_MS);
        assert!(fx.contains(&Effect::Abandon { gen: 1 }));
        assert!(sent(&fx).is_empty());
        let detail = link.status(HANDSHAKE_TIMEOUT_MS).detail;
        assert!(detail.contains("older domshell server"), "{detail}");
        assert!(detail.contains("not domshell"), "{detail}");
        // Or it gives up first and closes with 4005.
        let mut link = Link::new("1.0", 3);
        link.handle(Event::Settings(settings(TOKEN)), 0);
        link.handle(
            Event::SocketOpen {
                gen: 1,
                nonce: our_nonce(1),
            },
            0,
        );
        link.handle(
            Event::SocketClosed {
                gen: 1,
                code: 4005,
                reason: "expected a HELLO frame first".into(),
            },
            100,
        );
        assert_eq!(link.state(100), LinkState::Reconnecting);
        assert!(link.status(100).detail.contains("older domshell server"));
    }

    #[test]
    fn a_challenge_of_another_protocol_stops_with_an_update_hint() {
        let mut link = Link::new("1.0", 3);
        link.handle(Event::Settings(settings(TOKEN)), 0);
        link.handle(
            Event::SocketOpen {
                gen: 1,
                nonce: our_nonce(1),
            },
            0,
        );
        let future = Frame::Challenge {
            protocol: PROTOCOL_VERSION + 1,
            nonce: SERVER_NONCE,
        }
        .encode()
        .unwrap();
        let fx = link.handle(
            Event::SocketMessage {
                gen: 1,
                text: future,
            },
            1,
        );
        assert!(
            sent(&fx).is_empty(),
            "no proof for a server we cannot speak to"
        );
        assert!(fx.contains(&Effect::Abandon { gen: 1 }));
        assert_eq!(link.state(1), LinkState::Unauthorized);
        assert!(link
            .status(1)
            .detail
            .contains("update the domshell extension"));
    }

    #[test]
    fn the_resume_ticket_is_kept_and_presented_on_the_next_handshake() {
        let mut link = connected();
        // The WELCOME of `connected()` carried a ticket; a reconnect presents it.
        link.handle(
            Event::SocketClosed {
                gen: 1,
                code: 1001,
                reason: String::new(),
            },
            2_000,
        );
        let fx = open_and_challenge(&mut link, 2, 2_000);
        let [Frame::Hello { resume, .. }] = &sent(&fx)[..] else {
            panic!("HELLO expected")
        };
        assert_eq!(
            *resume,
            ResumeTicket::issue(TOKEN, &[1; 16]).claim(&SERVER_NONCE)
        );
        assert!(resume.as_ref().unwrap().is_valid(TOKEN, &SERVER_NONCE));
        // A fresh machine (a restarted worker) takes it from storage.
        let mut fresh = Link::new("1.0", 1);
        let mut stored = settings(TOKEN);
        stored.resume_ticket = Some(ResumeTicket::issue(TOKEN, &[4; 16]).as_str().into());
        fresh.handle(Event::Settings(stored), 0);
        let fx = open_and_challenge(&mut fresh, 1, 0);
        let [Frame::Hello { resume, .. }] = &sent(&fx)[..] else {
            panic!("HELLO expected")
        };
        assert_eq!(
            *resume,
            ResumeTicket::issue(TOKEN, &[4; 16]).claim(&SERVER_NONCE)
        );
        // And a new WELCOME's ticket is handed to the glue for storage.
        let fx = fresh.handle(
            Event::SocketMessage {
                gen: 1,
                text: welcome(2_000),
            },
            1,
        );
        assert!(fx.contains(&Effect::StoreResumeTicket(
            ResumeTicket::issue(TOKEN, &[1; 16]).as_str().into()
        )));
    }

    #[test]
    fn a_throttled_refusal_waits_out_the_window() {
        let mut link = Link::new("1.0", 3);
        link.handle(Event::Settings(settings(TOKEN)), 0);
        open_and_challenge(&mut link, 1, 0);
        link.handle(
            Event::SocketClosed {
                gen: 1,
                code: 4007,
                reason: "too many failed authentication attempts; retry in 7 s".into(),
            },
            50,
        );
        assert_eq!(link.next_wakeup(), Some(50 + THROTTLED_RETRY_MS));
        assert!(link.status(50).detail.contains("too many wrong tokens"));
    }
}
