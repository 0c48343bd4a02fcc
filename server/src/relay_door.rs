//! The owner's door for relays: how a stdio server of the same user proves it may carry its
//! MCP host's own rails (tiers, domains, a stable shell session) on this owner, and the wire
//! shapes both sides of that handshake use.
//!
//! ```text
//! relay → owner  POST /relay/challenge {nonce: Nr, identity}
//! owner → relay  {challenge: id, nonce: No, proof: HMAC(relay key, "relay-owner" ‖ No ‖ Nr ‖ identity)}
//!                (the relay checks this before it sends anything else)
//! relay → owner  initialize, _meta["dev.domshell/host"] =
//!                {challenge: id, proof: HMAC(relay key, "relay-client" ‖ No ‖ Nr ‖ identity),
//!                 client_id, policy}
//! ```
//!
//! The owner proves itself first, over the relay's fresh nonce, so a program that holds the
//! port while domshell is down learns nothing it could replay; the relay's proof is over the
//! owner's fresh nonce and is accepted once. A grant ([`RelayGrant`]) is the only way a
//! session gets rails other than the owner's, and the shell session it names is derived from
//! the authenticated identity, so no other client can take it over.
//!
//! [`DoorState`] is sans-IO (time and random bytes are parameters); [`RelayDoor`] wraps it
//! for the HTTP handlers. It must not touch sockets, files or MCP sessions.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use shared_protocol::frame::Secret;
use shared_protocol::handshake::{
    from_hex, relay_proof, to_hex, verify_relay_proof, Nonce, Proof, RelayRole,
};

use crate::auth::{Attempt, AuthThrottle};
use crate::policy::PolicyConfig;

/// `_meta` key of `initialize` under which a relay presents its [`HostClaim`].
pub const HOST_META_KEY: &str = "dev.domshell/host";
/// Challenges waiting for their `initialize`; the oldest is forgotten first.
pub const MAX_PENDING_CHALLENGES: usize = 64;
/// How long a challenge may wait for its `initialize`.
pub const CHALLENGE_TTL_MS: u64 = 10_000;
/// Wrong relay proofs allowed per window before further claims are refused unchecked.
pub const MAX_FAILED_CLAIMS: usize = 10;
const FAILED_CLAIMS_WINDOW_MS: u64 = 10_000;
/// Longest relay identity, in characters.
pub const MAX_IDENTITY_CHARS: usize = 96;
/// Bytes of a challenge id.
const CHALLENGE_ID_BYTES: usize = 16;

/// What a relay sends to ask for a challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    pub nonce: Nonce,
    /// The relay's stable name across owners (its shell session is `host:<identity>`).
    pub identity: String,
}

/// The owner's answer: its nonce and its proof over both nonces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeAnswer {
    pub challenge: String,
    pub nonce: Nonce,
    pub proof: Proof,
}

/// What a relay puts in `initialize` once the owner proved itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostClaim {
    pub challenge: String,
    pub proof: Proof,
    /// How the owner lists this host (capped and cleaned at the door).
    pub client_id: String,
    /// The rails the relay's operator chose for its host.
    pub policy: PolicyConfig,
}

/// What an admitted relay may do on this owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayGrant {
    pub identity: String,
    pub client_id: String,
    pub policy: PolicyConfig,
}

impl RelayGrant {
    /// The shell session of this host on every owner: derived from its identity only.
    pub fn shell_session(&self) -> String {
        format!("host:{}", self.identity)
    }
}

/// Why the door said no; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoorError {
    #[error("the relay identity must be 1–{MAX_IDENTITY_CHARS} characters of letters, digits, '-', '_' or '.'")]
    BadIdentity,
    #[error("this relay claim names no challenge this owner issued (it expired after {CHALLENGE_TTL_MS} ms, was used already, or comes from another owner): ask for a new challenge")]
    UnknownChallenge,
    #[error("the relay proof is wrong: both servers must run as the same user and read the same relay key (the relay-key file next to the token)")]
    WrongProof,
    #[error("too many wrong relay proofs recently; retry in {retry_after_ms} ms")]
    Throttled { retry_after_ms: u64 },
}

/// Whether `identity` is safe as a session key, in logs and in the status document.
pub fn valid_identity(identity: &str) -> bool {
    !identity.is_empty()
        && identity.chars().count() <= MAX_IDENTITY_CHARS
        && identity
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

struct Pending {
    id: String,
    owner: Nonce,
    relay: Nonce,
    identity: String,
    issued_ms: u64,
}

/// The door's memory: pending challenges (bounded) and the throttle of wrong proofs.
pub struct DoorState {
    pending: VecDeque<Pending>,
    throttle: AuthThrottle,
}

impl Default for DoorState {
    fn default() -> Self {
        Self {
            pending: VecDeque::new(),
            throttle: AuthThrottle::new(FAILED_CLAIMS_WINDOW_MS, MAX_FAILED_CLAIMS),
        }
    }
}

impl DoorState {
    fn expire(&mut self, now_ms: u64) {
        self.pending
            .retain(|p| now_ms.saturating_sub(p.issued_ms) < CHALLENGE_TTL_MS);
    }

    /// Answer a challenge request with `owner_nonce` and `id` (fresh random bytes).
    pub fn challenge(
        &mut self,
        key: &str,
        request: &ChallengeRequest,
        now_ms: u64,
        owner_nonce: Nonce,
        id: [u8; CHALLENGE_ID_BYTES],
    ) -> Result<ChallengeAnswer, DoorError> {
        if !valid_identity(&request.identity) {
            return Err(DoorError::BadIdentity);
        }
        self.expire(now_ms);
        if self.pending.len() >= MAX_PENDING_CHALLENGES {
            self.pending.pop_front();
        }
        let id = to_hex(&id);
        self.pending.push_back(Pending {
            id: id.clone(),
            owner: owner_nonce,
            relay: request.nonce,
            identity: request.identity.clone(),
            issued_ms: now_ms,
        });
        Ok(ChallengeAnswer {
            challenge: id,
            nonce: owner_nonce,
            proof: relay_proof(
                key,
                RelayRole::Owner,
                &owner_nonce,
                &request.nonce,
                &request.identity,
            ),
        })
    }

    /// Check a claim: its challenge is used up whatever the outcome, and a wrong proof is
    /// counted (and refused unchecked once too many were wrong).
    pub fn admit(
        &mut self,
        key: &str,
        claim: &HostClaim,
        now_ms: u64,
    ) -> Result<RelayGrant, DoorError> {
        self.expire(now_ms);
        let well_formed = from_hex::<CHALLENGE_ID_BYTES>(&claim.challenge).is_some();
        let position = well_formed
            .then(|| self.pending.iter().position(|p| p.id == claim.challenge))
            .flatten();
        let Some(pending) = position.and_then(|i| self.pending.remove(i)) else {
            return Err(DoorError::UnknownChallenge);
        };
        let attempt = self.throttle.attempt(now_ms, false, || {
            verify_relay_proof(
                key,
                RelayRole::Relay,
                &pending.owner,
                &pending.relay,
                &pending.identity,
                &claim.proof,
            )
        });
        match attempt {
            Attempt::Accepted => Ok(RelayGrant {
                identity: pending.identity,
                client_id: crate::labels::sanitize(
                    &claim.client_id,
                    crate::labels::MAX_LABEL_CHARS,
                ),
                policy: claim.policy.clone(),
            }),
            Attempt::Rejected => Err(DoorError::WrongProof),
            Attempt::Throttled { retry_after_ms } => Err(DoorError::Throttled { retry_after_ms }),
        }
    }
}

/// The door as the HTTP handlers use it: the relay key, the state under one lock, the
/// process's clock and random source.
pub struct RelayDoor {
    key: Secret,
    epoch: Instant,
    state: Mutex<DoorState>,
}

impl RelayDoor {
    pub fn new(key: Secret) -> Self {
        Self {
            key,
            epoch: Instant::now(),
            state: Mutex::new(DoorState::default()),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, DoorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn challenge(&self, request: &ChallengeRequest) -> Result<ChallengeAnswer, anyhow::Error> {
        let mut nonce = [0u8; shared_protocol::handshake::NONCE_BYTES];
        let mut id = [0u8; CHALLENGE_ID_BYTES];
        getrandom::fill(&mut nonce)
            .and_then(|()| getrandom::fill(&mut id))
            .map_err(|e| anyhow::anyhow!("cannot draw random bytes: {e}"))?;
        let now = self.now_ms();
        Ok(self
            .state()
            .challenge(self.key.expose(), request, now, Nonce(nonce), id)?)
    }

    pub fn admit(&self, claim: &HostClaim) -> Result<RelayGrant, DoorError> {
        let now = self.now_ms();
        self.state().admit(self.key.expose(), claim, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

    fn request(identity: &str) -> ChallengeRequest {
        ChallengeRequest {
            nonce: Nonce([7; 32]),
            identity: identity.into(),
        }
    }

    fn claim_for(answer: &ChallengeAnswer, key: &str, identity: &str) -> HostClaim {
        HostClaim {
            challenge: answer.challenge.clone(),
            proof: relay_proof(
                key,
                RelayRole::Relay,
                &answer.nonce,
                &Nonce([7; 32]),
                identity,
            ),
            client_id: "stdio-proxy/42".into(),
            policy: PolicyConfig {
                allow_write: true,
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_relay_that_knows_the_key_is_admitted_once_with_its_rails() {
        let mut door = DoorState::default();
        let answer = door
            .challenge(KEY, &request("stdio-42-ab"), 0, Nonce([9; 32]), [1; 16])
            .unwrap();
        // The owner proved itself over the relay's nonce.
        assert!(verify_relay_proof(
            KEY,
            RelayRole::Owner,
            &answer.nonce,
            &Nonce([7; 32]),
            "stdio-42-ab",
            &answer.proof
        ));
        let claim = claim_for(&answer, KEY, "stdio-42-ab");
        let grant = door.admit(KEY, &claim, 5).unwrap();
        assert_eq!(grant.shell_session(), "host:stdio-42-ab");
        assert!(grant.policy.allow_write);
        // A replay of the same claim finds no challenge.
        assert_eq!(door.admit(KEY, &claim, 6), Err(DoorError::UnknownChallenge));
    }

    #[test]
    fn wrong_keys_identities_and_late_claims_are_refused() {
        let mut door = DoorState::default();
        let answer = door
            .challenge(KEY, &request("a"), 0, Nonce([9; 32]), [1; 16])
            .unwrap();
        let wrong_key = claim_for(&answer, "another-key-0123456789abcdef0123456789", "a");
        assert_eq!(door.admit(KEY, &wrong_key, 1), Err(DoorError::WrongProof));
        // The challenge was used up by the wrong claim.
        let right = claim_for(&answer, KEY, "a");
        assert_eq!(door.admit(KEY, &right, 2), Err(DoorError::UnknownChallenge));
        // A claim proving another identity than the challenge's is wrong.
        let answer = door
            .challenge(KEY, &request("a"), 10, Nonce([9; 32]), [2; 16])
            .unwrap();
        assert_eq!(
            door.admit(KEY, &claim_for(&answer, KEY, "b"), 11),
            Err(DoorError::WrongProof)
        );
        // Too late.
        let answer = door
            .challenge(KEY, &request("a"), 20, Nonce([9; 32]), [3; 16])
            .unwrap();
        assert_eq!(
            door.admit(KEY, &claim_for(&answer, KEY, "a"), 20 + CHALLENGE_TTL_MS),
            Err(DoorError::UnknownChallenge)
        );
        for bad in ["", "a b", "x\ny", "host:x", &"k".repeat(97)] {
            assert!(matches!(
                door.challenge(KEY, &request(bad), 30, Nonce([9; 32]), [4; 16]),
                Err(DoorError::BadIdentity)
            ));
        }
    }

    #[test]
    fn pending_challenges_are_bounded_and_wrong_proofs_throttled() {
        let mut door = DoorState::default();
        for i in 0..(MAX_PENDING_CHALLENGES + 10) {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            door.challenge(KEY, &request("a"), 0, Nonce([9; 32]), id)
                .unwrap();
        }
        assert_eq!(door.pending.len(), MAX_PENDING_CHALLENGES);
        let mut refused = 0;
        for i in 0..(MAX_FAILED_CLAIMS + 5) {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&((i + 10) as u64).to_be_bytes());
            let claim = HostClaim {
                challenge: to_hex(&id),
                proof: Proof([0; 32]),
                client_id: "x".into(),
                policy: PolicyConfig::default(),
            };
            if matches!(door.admit(KEY, &claim, 1), Err(DoorError::Throttled { .. })) {
                refused += 1;
            }
        }
        assert_eq!(
            refused, 5,
            "past {MAX_FAILED_CLAIMS} wrong proofs, claims are not checked"
        );
    }

    #[test]
    fn a_client_id_is_capped_at_the_door() {
        let mut door = DoorState::default();
        let answer = door
            .challenge(KEY, &request("a"), 0, Nonce([9; 32]), [1; 16])
            .unwrap();
        let mut claim = claim_for(&answer, KEY, "a");
        claim.client_id = "n".repeat(300_000);
        let grant = door.admit(KEY, &claim, 1).unwrap();
        assert!(grant.client_id.chars().count() <= crate::labels::MAX_LABEL_CHARS);
    }
}
