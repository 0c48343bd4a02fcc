//! The bridge's mutual authentication: both sides prove they know the token without ever
//! sending it, over nonces chosen by both sides.
//!
//! ```text
//! srv → ext  CHALLENGE {protocol, nonce: Ns}
//! ext → srv  HELLO     {protocol, version, capabilities, nonce: Ne,
//!                       proof: HMAC-SHA256(token, "extension" ‖ Ns ‖ Ne),
//!                       resume?: {id, proof: HMAC-SHA256(K, "resume-claim" ‖ Ns)}}
//! srv → ext  WELCOME   {…, proof: HMAC-SHA256(token, "server" ‖ Ns ‖ Ne),
//!                       resume: "id.K"}   where K = HMAC-SHA256(token, "resume" ‖ id)
//! ```
//!
//! The server checks the extension's proof before it says anything that depends on the
//! token; the extension checks the server's proof before it accepts any other frame. A fresh
//! nonce on each side means neither proof can be replayed on another connection. The resume
//! ticket lets a server recognise, without storing anything, an extension that authenticated
//! before, so a flood of wrong guesses cannot lock it out (see the server's throttle). The
//! ticket itself never travels back: `HELLO` carries only a claim keyed by it over the
//! server's fresh nonce, so a program that holds the port learns nothing it could reuse.
//!
//! This module owns the labels, the encodings and the constant-time checks. It must not pick
//! random numbers or read a clock: callers supply nonces and ids from their own random
//! source (the server's OS generator, the browser's `crypto.getRandomValues`).

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

/// Bytes of random in each side's nonce.
pub const NONCE_BYTES: usize = 32;
/// Bytes of an HMAC-SHA256 proof.
pub const PROOF_BYTES: usize = 32;
/// Bytes of random in a resume ticket's id.
pub const TICKET_ID_BYTES: usize = 16;
/// Shortest token accepted: 32 characters. A generated token is 64 hex characters (256
/// bits); anything below 128 bits could be guessed offline from one recorded handshake.
pub const MIN_TOKEN_CHARS: usize = 32;

/// Which side a proof speaks for. The labels differ so that one side's proof can never be
/// reflected back as the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Extension,
    Server,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Extension => b"extension",
            Role::Server => b"server",
        }
    }
}

const RESUME_LABEL: &[u8] = b"resume";
const CLAIM_LABEL: &[u8] = b"resume-claim";

/// A handshake nonce, hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce(pub [u8; NONCE_BYTES]);

/// An HMAC-SHA256 proof, hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Proof(pub [u8; PROOF_BYTES]);

/// The public id of a resume ticket, hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TicketId(pub [u8; TICKET_ID_BYTES]);

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nonce({})", to_hex(&self.0))
    }
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proof({})", to_hex(&self.0))
    }
}

fn mac(token: &str) -> Hmac<Sha256> {
    match Hmac::<Sha256>::new_from_slice(token.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

fn proof_mac(token: &str, role: Role, server: &Nonce, extension: &Nonce) -> Hmac<Sha256> {
    let mut mac = mac(token);
    mac.update(role.label());
    mac.update(&server.0);
    mac.update(&extension.0);
    mac
}

/// The proof `role` sends for the nonce pair.
pub fn prove(token: &str, role: Role, server: &Nonce, extension: &Nonce) -> Proof {
    let bytes = proof_mac(token, role, server, extension)
        .finalize()
        .into_bytes();
    let mut out = [0u8; PROOF_BYTES];
    out.copy_from_slice(&bytes);
    Proof(out)
}

/// Whether `proof` is what `role` must send for the nonce pair; constant time in the proof.
pub fn verify(token: &str, role: Role, server: &Nonce, extension: &Nonce, proof: &Proof) -> bool {
    proof_mac(token, role, server, extension)
        .verify_slice(&proof.0)
        .is_ok()
}

/// Which side of a relay attachment a proof speaks for: the owner of the bridge port, or a
/// stdio server that relays its MCP host to it. The labels are distinct from the bridge's
/// so that no proof made for one door is accepted at the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayRole {
    Owner,
    Relay,
}

impl RelayRole {
    fn label(self) -> &'static [u8] {
        match self {
            RelayRole::Owner => b"relay-owner",
            RelayRole::Relay => b"relay-client",
        }
    }
}

fn relay_mac(
    key: &str,
    role: RelayRole,
    owner: &Nonce,
    relay: &Nonce,
    identity: &str,
) -> Hmac<Sha256> {
    let mut mac = mac(key);
    mac.update(role.label());
    mac.update(&owner.0);
    mac.update(&relay.0);
    // The identity is length-prefixed so that no two (identity, nonce) splits collide.
    mac.update(&(identity.len() as u64).to_be_bytes());
    mac.update(identity.as_bytes());
    mac
}

/// The proof `role` sends when a relay with `identity` attaches: HMAC-SHA256(relay key,
/// label ‖ owner nonce ‖ relay nonce ‖ identity). The owner answers the relay's nonce first,
/// so a program holding the port is found out before the relay sends anything secret.
pub fn relay_proof(
    key: &str,
    role: RelayRole,
    owner: &Nonce,
    relay: &Nonce,
    identity: &str,
) -> Proof {
    let bytes = relay_mac(key, role, owner, relay, identity)
        .finalize()
        .into_bytes();
    let mut out = [0u8; PROOF_BYTES];
    out.copy_from_slice(&bytes);
    Proof(out)
}

/// Whether `proof` is what `role` must send for this attachment; constant time in the proof.
pub fn verify_relay_proof(
    key: &str,
    role: RelayRole,
    owner: &Nonce,
    relay: &Nonce,
    identity: &str,
    proof: &Proof,
) -> bool {
    relay_mac(key, role, owner, relay, identity)
        .verify_slice(&proof.0)
        .is_ok()
}

/// A short fingerprint of a token (HMAC under a label of its own), so the extension can
/// remember *which* token the server refused without keeping a second copy of it.
pub fn token_tag(token: &str) -> String {
    let mut mac = mac(token);
    mac.update(b"domshell token tag");
    to_hex(&mac.finalize().into_bytes()[..8])
}

/// A stateless resume ticket: `<id hex>.<HMAC(token, "resume" ‖ id) hex>`. It proves the
/// holder authenticated with this token before; it is never a substitute for a proof.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResumeTicket(String);

impl std::fmt::Debug for ResumeTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeTicket(<redacted>)")
    }
}

/// The key a ticket holder proves possession of: HMAC(token, "resume" ‖ id).
fn ticket_key(token: &str, id: &[u8; TICKET_ID_BYTES]) -> [u8; PROOF_BYTES] {
    let mut mac = mac(token);
    mac.update(RESUME_LABEL);
    mac.update(id);
    let mut key = [0u8; PROOF_BYTES];
    key.copy_from_slice(&mac.finalize().into_bytes());
    key
}

fn claim_mac(key: &[u8; PROOF_BYTES], server: &Nonce) -> Hmac<Sha256> {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(CLAIM_LABEL);
    mac.update(&server.0);
    mac
}

/// What `HELLO` carries for a ticket: its id, and a proof keyed by the ticket over this
/// connection's server nonce (useless on any other connection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeClaim {
    pub id: TicketId,
    pub proof: Proof,
}

impl ResumeClaim {
    /// Whether the claimant holds a ticket issued under `token`, for this `server` nonce;
    /// constant time in the proof.
    pub fn is_valid(&self, token: &str, server: &Nonce) -> bool {
        claim_mac(&ticket_key(token, &self.id.0), server)
            .verify_slice(&self.proof.0)
            .is_ok()
    }
}

impl ResumeTicket {
    /// Issue the ticket for `id` under `token`.
    pub fn issue(token: &str, id: &[u8; TICKET_ID_BYTES]) -> Self {
        Self(format!("{}.{}", to_hex(id), to_hex(&ticket_key(token, id))))
    }

    /// Whether this ticket was issued under `token`; constant time in the MAC.
    pub fn is_valid(&self, token: &str) -> bool {
        let Some((id, key)) = self.parts() else {
            return false;
        };
        let mut mac = mac(token);
        mac.update(RESUME_LABEL);
        mac.update(&id);
        mac.verify_slice(&key).is_ok()
    }

    fn parts(&self) -> Option<([u8; TICKET_ID_BYTES], [u8; PROOF_BYTES])> {
        let (id, key) = self.0.split_once('.')?;
        Some((from_hex(id)?, from_hex(key)?))
    }

    /// The claim to put in `HELLO` for the server nonce of this connection.
    pub fn claim(&self, server: &Nonce) -> Option<ResumeClaim> {
        let (id, key) = self.parts()?;
        let mut proof = [0u8; PROOF_BYTES];
        proof.copy_from_slice(&claim_mac(&key, server).finalize().into_bytes());
        Some(ResumeClaim {
            id: TicketId(id),
            proof: Proof(proof),
        })
    }

    /// The stored form (for the extension's storage).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Read a stored ticket back; `None` when it is not shaped like one.
    pub fn parse(text: &str) -> Option<Self> {
        let (id, tag) = text.trim().split_once('.')?;
        from_hex::<TICKET_ID_BYTES>(id)?;
        from_hex::<PROOF_BYTES>(tag)?;
        Some(Self(text.trim().to_string()))
    }
}

/// Why a token is not good enough to guard the browser.
pub fn weak_token_reason(token: &str) -> Option<String> {
    let chars = token.chars().count();
    (chars < MIN_TOKEN_CHARS).then(|| {
        format!(
            "the token has {chars} characters; at least {MIN_TOKEN_CHARS} (128 bits of random) are required"
        )
    })
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// Exactly `N` bytes from hex (either case); `None` for any other length or character.
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

macro_rules! hex_serde {
    ($type:ident, $len:expr, $what:literal) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&to_hex(&self.0))
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                from_hex::<{ $len }>(&text).map($type).ok_or_else(|| {
                    serde::de::Error::custom(concat!(
                        $what,
                        " must be ",
                        stringify!($len),
                        " bytes of hex"
                    ))
                })
            }
        }
    };
}

hex_serde!(Nonce, NONCE_BYTES, "nonce");
hex_serde!(Proof, PROOF_BYTES, "proof");
hex_serde!(TicketId, TICKET_ID_BYTES, "ticket id");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn proofs_verify_only_for_the_same_token_role_and_nonces() {
        let (ns, ne) = (Nonce([1; 32]), Nonce([2; 32]));
        let p = prove(TOKEN, Role::Extension, &ns, &ne);
        assert!(verify(TOKEN, Role::Extension, &ns, &ne, &p));
        assert!(!verify(
            "another-token-of-enough-length-xx",
            Role::Extension,
            &ns,
            &ne,
            &p
        ));
        assert!(
            !verify(TOKEN, Role::Server, &ns, &ne, &p),
            "a proof is not reflectable"
        );
        assert!(
            !verify(TOKEN, Role::Extension, &ne, &ns, &p),
            "nonce order matters"
        );
        assert!(!verify(TOKEN, Role::Extension, &ns, &Nonce([3; 32]), &p));
        assert_ne!(p, prove(TOKEN, Role::Server, &ns, &ne));
    }

    #[test]
    fn proof_is_hmac_sha256_of_label_and_nonces() {
        // RFC 4231-style check that we compute plain HMAC-SHA256 over the concatenation, so
        // another implementation can interoperate.
        let (ns, ne) = (Nonce([0xaa; 32]), Nonce([0x55; 32]));
        let mut message = b"extension".to_vec();
        message.extend_from_slice(&ns.0);
        message.extend_from_slice(&ne.0);
        let mut expected = Hmac::<Sha256>::new_from_slice(TOKEN.as_bytes()).unwrap();
        expected.update(&message);
        assert_eq!(
            prove(TOKEN, Role::Extension, &ns, &ne).0.as_slice(),
            expected.finalize().into_bytes().as_slice()
        );
    }

    #[test]
    fn tickets_are_bound_to_the_token_and_tamper_evident() {
        let ticket = ResumeTicket::issue(TOKEN, &[7; TICKET_ID_BYTES]);
        assert!(ticket.is_valid(TOKEN));
        assert!(!ticket.is_valid("another-token-of-enough-length-xx"));
        let text = ticket.as_str().to_string();
        assert_eq!(ResumeTicket::parse(&text), Some(ticket.clone()));
        let mut forged = text.clone().into_bytes();
        forged[0] = if forged[0] == b'0' { b'1' } else { b'0' };
        let forged = ResumeTicket::parse(std::str::from_utf8(&forged).unwrap()).unwrap();
        assert!(!forged.is_valid(TOKEN));
        for junk in ["", ".", "abc.def", "zz", &text.replace('.', "")] {
            assert_eq!(ResumeTicket::parse(junk), None, "{junk:?}");
        }
        assert!(!format!("{ticket:?}").contains(&text[..8]));
    }

    #[test]
    fn a_claim_proves_the_ticket_without_revealing_it_and_only_for_one_nonce() {
        let ticket = ResumeTicket::issue(TOKEN, &[7; TICKET_ID_BYTES]);
        let (ns, other) = (Nonce([1; 32]), Nonce([2; 32]));
        let claim = ticket.claim(&ns).unwrap();
        assert!(claim.is_valid(TOKEN, &ns));
        assert!(!claim.is_valid(TOKEN, &other), "a claim cannot be replayed");
        assert!(!claim.is_valid("another-token-of-enough-length-xx", &ns));
        let wire = serde_json::to_string(&claim).unwrap();
        let key = ticket.as_str().split_once('.').unwrap().1;
        assert!(
            !wire.contains(key),
            "the ticket's key stays with its holder: {wire}"
        );
        // A forged id with a guessed proof is refused.
        let forged = ResumeClaim {
            id: TicketId([8; TICKET_ID_BYTES]),
            proof: claim.proof,
        };
        assert!(!forged.is_valid(TOKEN, &ns));
    }

    #[test]
    fn relay_proofs_bind_role_nonces_identity_and_key_and_differ_from_bridge_proofs() {
        let (owner, relay) = (Nonce([1; NONCE_BYTES]), Nonce([2; NONCE_BYTES]));
        let id = "stdio-42-abcdef";
        let proof = relay_proof(TOKEN, RelayRole::Relay, &owner, &relay, id);
        assert!(verify_relay_proof(
            TOKEN,
            RelayRole::Relay,
            &owner,
            &relay,
            id,
            &proof
        ));
        let other_key = "fedcba9876543210fedcba9876543210";
        for (key, role, o, r, who) in [
            (other_key, RelayRole::Relay, owner, relay, id),
            (TOKEN, RelayRole::Owner, owner, relay, id),
            (TOKEN, RelayRole::Relay, relay, owner, id),
            (TOKEN, RelayRole::Relay, owner, Nonce([3; NONCE_BYTES]), id),
            (TOKEN, RelayRole::Relay, owner, relay, "stdio-42-abcdeg"),
        ] {
            assert!(!verify_relay_proof(key, role, &o, &r, who, &proof));
        }
        // The owner's answer is never the relay's, and neither is a bridge proof.
        assert_ne!(
            relay_proof(TOKEN, RelayRole::Owner, &owner, &relay, id),
            proof
        );
        assert_ne!(prove(TOKEN, Role::Server, &owner, &relay), proof);
        assert_ne!(
            relay_proof(TOKEN, RelayRole::Owner, &owner, &relay, ""),
            prove(TOKEN, Role::Server, &owner, &relay)
        );
    }

    #[test]
    fn weak_tokens_are_named() {
        assert!(weak_token_reason("t").unwrap().contains("32"));
        assert!(weak_token_reason(&"x".repeat(31)).is_some());
        assert_eq!(weak_token_reason(TOKEN), None);
    }

    #[test]
    fn nonces_travel_as_hex_and_refuse_other_lengths() {
        let json = serde_json::to_string(&Nonce([0xab; 32])).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(
            serde_json::from_str::<Nonce>(&json).unwrap(),
            Nonce([0xab; 32])
        );
        assert!(serde_json::from_str::<Nonce>("\"abcd\"").is_err());
        assert!(serde_json::from_str::<Proof>(&format!("\"{}\"", "g".repeat(64))).is_err());
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            prop_assert_eq!(from_hex::<32>(&to_hex(&bytes)), Some(bytes));
            prop_assert_eq!(from_hex::<32>(&to_hex(&bytes).to_uppercase()), Some(bytes));
        }
    }
}
