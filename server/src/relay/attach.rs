//! The relay's half of the attach handshake (see [`crate::relay_door`]): ask the holder of
//! the port for a challenge over a fresh nonce, check that its answer proves the relay key,
//! and only then make the claim that goes into the host's `initialize`.
//!
//! Nothing secret leaves this process before the holder proved itself: the challenge request
//! carries a nonce and the relay's public identity, and the claim is a proof over the
//! holder's nonce, valid once. It must not retry or decide what the relay does next; it
//! reports what it found.

use std::time::Duration;

use shared_protocol::frame::Secret;
use shared_protocol::handshake::{relay_proof, verify_relay_proof, Nonce, RelayRole, NONCE_BYTES};
use shared_protocol::RELAY_CHALLENGE_PATH;

use crate::policy::PolicyConfig;
use crate::relay_door::{ChallengeAnswer, ChallengeRequest, HostClaim};

/// Longest the whole challenge exchange may take.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest challenge answer read (an id, a nonce and a proof).
const MAX_ANSWER_BYTES: usize = 4096;

/// Who this relay is to every owner.
#[derive(Debug, Clone)]
pub struct RelayIdentity {
    /// Stable across owners: the owner keeps this host's shell session under `host:<id>`.
    pub identity: String,
    pub client_id: String,
    /// The rails this relay's operator chose for its host.
    pub policy: PolicyConfig,
}

/// Why attaching did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The holder answered, but not with a proof of the relay key.
    #[error("{0}")]
    Unproven(String),
    /// The holder is a domshell owner that admits no relays (it has no relay key).
    #[error("{0}")]
    Refused(String),
    /// The holder could not be asked (closed, silent, too slow).
    #[error("{0}")]
    Unreachable(String),
}

/// Ask the holder of `host:port` to prove the relay key; the claim to present on success.
pub async fn authenticate(
    host: &str,
    port: u16,
    key: &Secret,
    me: &RelayIdentity,
) -> Result<HostClaim, AttachError> {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| AttachError::Unreachable(format!("cannot draw a nonce: {e}")))?;
    let nonce = Nonce(bytes);
    let request = ChallengeRequest {
        nonce,
        identity: me.identity.clone(),
    };
    let answer = tokio::time::timeout(ATTACH_TIMEOUT, ask(host, port, &request))
        .await
        .map_err(|_| {
            AttachError::Unreachable(format!(
                "it did not answer a relay challenge within {} s",
                ATTACH_TIMEOUT.as_secs()
            ))
        })??;
    check_answer(key, &nonce, me, &answer)
}

/// The pure half: does `answer` prove the relay key over our `nonce`? Then the claim.
pub fn check_answer(
    key: &Secret,
    nonce: &Nonce,
    me: &RelayIdentity,
    answer: &ChallengeAnswer,
) -> Result<HostClaim, AttachError> {
    if !verify_relay_proof(
        key.expose(),
        RelayRole::Owner,
        &answer.nonce,
        nonce,
        &me.identity,
        &answer.proof,
    ) {
        return Err(AttachError::Unproven(
            "its answer to the relay challenge does not prove this user's relay key".into(),
        ));
    }
    Ok(HostClaim {
        challenge: answer.challenge.clone(),
        proof: relay_proof(
            key.expose(),
            RelayRole::Relay,
            &answer.nonce,
            nonce,
            &me.identity,
        ),
        client_id: me.client_id.clone(),
        policy: me.policy.clone(),
    })
}

async fn ask(
    host: &str,
    port: u16,
    request: &ChallengeRequest,
) -> Result<ChallengeAnswer, AttachError> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(1))
        .build()
        .map_err(|e| AttachError::Unreachable(format!("cannot make an HTTP client: {e}")))?;
    let body = serde_json::to_vec(request)
        .map_err(|e| AttachError::Unreachable(format!("cannot encode the challenge: {e}")))?;
    let mut response = http
        .post(format!("http://{host}:{port}{RELAY_CHALLENGE_PATH}"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| AttachError::Unreachable(format!("its relay door cannot be reached: {e}")))?;
    let status = response.status();
    let mut text = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| AttachError::Unreachable(format!("reading its answer failed: {e}")))?
    {
        if text.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(AttachError::Unproven(
                "its answer to the relay challenge is far too large".into(),
            ));
        }
        text.extend_from_slice(&chunk);
    }
    if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        let why = serde_json::from_slice::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| "it admits no relays".into());
        return Err(AttachError::Refused(crate::labels::sanitize(&why, 200)));
    }
    if !status.is_success() {
        return Err(AttachError::Unproven(format!(
            "it answered the relay challenge with HTTP {status}"
        )));
    }
    serde_json::from_slice(&text).map_err(|_| {
        AttachError::Unproven("its answer to the relay challenge is not domshell's".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay_door::DoorState;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

    fn me() -> RelayIdentity {
        RelayIdentity {
            identity: "stdio-1-aa".into(),
            client_id: "stdio-proxy/1".into(),
            policy: PolicyConfig::default(),
        }
    }

    #[test]
    fn an_owner_with_the_key_is_believed_and_its_challenge_answered() {
        let mut door = DoorState::default();
        let nonce = Nonce([5; 32]);
        let answer = door
            .challenge(
                KEY,
                &ChallengeRequest {
                    nonce,
                    identity: me().identity,
                },
                0,
                Nonce([6; 32]),
                [1; 16],
            )
            .unwrap();
        let claim = check_answer(&Secret(KEY.into()), &nonce, &me(), &answer).unwrap();
        let grant = door.admit(KEY, &claim, 1).unwrap();
        assert_eq!(grant.shell_session(), "host:stdio-1-aa");
    }

    #[test]
    fn an_impostor_that_echoes_or_guesses_is_found_out() {
        let nonce = Nonce([5; 32]);
        let key = Secret(KEY.into());
        // It cannot compute the owner's proof without the key; echoing our nonce or
        // handing back a proof made for another nonce does not help.
        let mut door = DoorState::default();
        let other = door
            .challenge(
                KEY,
                &ChallengeRequest {
                    nonce: Nonce([9; 32]),
                    identity: me().identity,
                },
                0,
                Nonce([6; 32]),
                [1; 16],
            )
            .unwrap();
        for answer in [
            ChallengeAnswer {
                challenge: "00".repeat(16),
                nonce,
                proof: shared_protocol::handshake::Proof([0; 32]),
            },
            other,
        ] {
            assert!(matches!(
                check_answer(&key, &nonce, &me(), &answer),
                Err(AttachError::Unproven(_))
            ));
        }
    }
}
