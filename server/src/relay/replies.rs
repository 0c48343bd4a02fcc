//! The answers the relay makes up itself, for host requests no backend will answer: sent to a
//! backend that went away, held too long while none was there, or refused by a bound.
//!
//! Every one is retryable and says why and what to do, in the shape the host expects for its
//! request: a `tools/call` gets an `isError` tool result with structured data (what agents
//! read), anything else a JSON-RPC error carrying the same data. It must not decide when to
//! answer; the core does.

use serde_json::{json, Value};

/// Why the relay answered a request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// It was sent to a backend that went away before answering.
    OwnerLost,
    /// It was held while no backend was there, for as long as the relay holds requests.
    NotTaken,
    /// A bound of the relay refused it (held queue, in-flight table, backend queue).
    Overloaded,
}

impl Failure {
    /// The `reason` agents read. A request that never reached an owner is reported as lost
    /// too: hosts already retry `owner_lost`, and `detail` tells the two apart.
    fn reason(self) -> &'static str {
        match self {
            Failure::OwnerLost | Failure::NotTaken => "owner_lost",
            Failure::Overloaded => "relay_overloaded",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Failure::OwnerLost => "The domshell server this one was attached to went away; this server has already re-connected or taken over. Send the request again; a browser action may or may not have happened, so check the page before repeating it.",
            Failure::NotTaken => "This server is still connecting to the domshell server that owns the browser bridge (the previous one went away or a new one is starting). Nothing was run: send the request again in a few seconds.",
            Failure::Overloaded => "Too many requests are waiting at this domshell server. Nothing was run: wait for the pending ones to finish, then send it again.",
        }
    }

    fn headline(self, why: &str) -> String {
        match self {
            Failure::OwnerLost => {
                format!("the domshell server answering this request went away ({why})")
            }
            Failure::NotTaken => format!("no domshell server took this request in time ({why})"),
            Failure::Overloaded => format!("this request was not sent ({why})"),
        }
    }
}

/// The answer to the host's request `id` (of `method`) that the relay gives instead of a
/// backend, for `failure`; `why` is the detail of this occurrence.
pub fn failed(id: Value, method: &str, failure: Failure, why: &str) -> Value {
    let data = json!({
        "reason": failure.reason(),
        "retryable": true,
        "hint": failure.hint(),
        "detail": why,
    });
    if method == "tools/call" {
        let text = match failure {
            Failure::OwnerLost => format!(
                "Error: the domshell server answering this call went away ({why}). {}",
                failure.hint()
            ),
            _ => format!("Error: {}. {}", failure.headline(why), failure.hint()),
        };
        json!({"jsonrpc": "2.0", "id": id, "result": {
            "content": [{"type": "text", "text": text}],
            "structuredContent": data,
            "isError": true,
        }})
    } else {
        json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": -32000,
            "message": format!("{}; send it again", failure.headline(why)),
            "data": data,
        }})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_get_error_results_and_other_requests_errors_both_retryable() {
        for failure in [Failure::OwnerLost, Failure::NotTaken, Failure::Overloaded] {
            let call = failed(json!(1), "tools/call", failure, "because");
            assert_eq!(call["id"], 1);
            assert_eq!(call["result"]["isError"], true);
            let data = &call["result"]["structuredContent"];
            assert_eq!(data["retryable"], true);
            assert_eq!(data["detail"], "because");
            let other = failed(json!("x"), "tools/list", failure, "because");
            assert_eq!(other["error"]["code"], -32000);
            assert_eq!(other["error"]["data"], *data);
        }
        let lost = failed(json!(1), "tools/call", Failure::OwnerLost, "gone");
        assert_eq!(lost["result"]["structuredContent"]["reason"], "owner_lost");
        let busy = failed(json!(1), "ping", Failure::Overloaded, "full");
        assert_eq!(busy["error"]["data"]["reason"], "relay_overloaded");
    }
}
