//! How a call's [`CallOutcome`] looks to an MCP client: one text block with `$ line`
//! headers when there were several lines, screenshots as image blocks, the `[lane: …]`
//! trailer every reply ends with, and `isError` results whose `structuredContent` carries
//! `reason`, `retryable`, `hint` and the failed lines.
//!
//! It must not run anything: it only formats what the pipeline returned.

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde_json::json;
use shared_protocol::attachments::{self, Binary};

use crate::pipeline::{CallOutcome, Failure, LineResult};

/// A call that failed as a whole, before or instead of running lines.
pub(super) fn error_result(text: &str, failure: Failure, lane: Option<&str>) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({
        "reason": failure.reason,
        "retryable": failure.retryable,
        "hint": failure.hint,
        "lane": lane,
    }));
    result
}

/// Turn line results into one tool result: `$ line` headers when there are several, images
/// for screenshots, the lane trailer, and `isError` with structured details on failure.
pub(super) fn compose(outcome: CallOutcome) -> CallToolResult {
    let CallOutcome {
        lines: results,
        lane,
    } = outcome;
    let lane = lane.as_str();
    let multi = results.len() > 1;
    let mut blocks: Vec<ContentBlock> = Vec::new();
    let mut text = String::new();
    for result in &results {
        if multi {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str("$ ");
            text.push_str(&result.line);
            text.push('\n');
        }
        match attachments::read(&result.output).filter(|_| result.ok) {
            Some(binary) => {
                // What the attachment is, in words, for hosts that show no images.
                let kb = binary.bytes().div_ceil(1024);
                let said = match &binary {
                    Binary::Image {
                        mime,
                        size: Some((w, h)),
                        ..
                    } => format!("[screenshot: {w}×{h} {mime}, {kb} KB]"),
                    Binary::Image { mime, .. } => format!("[screenshot: {mime}, {kb} KB]"),
                    Binary::Pdf { .. } => format!("[pdf: {kb} KB, attached as a resource]"),
                };
                text.push_str(&said);
                blocks.push(ContentBlock::text(std::mem::take(&mut text)));
                blocks.push(match binary {
                    Binary::Image { mime, data, .. } => ContentBlock::image(data, mime),
                    Binary::Pdf { data } => ContentBlock::resource(
                        ResourceContents::blob(data, "domshell://pdf/page.pdf")
                            .with_mime_type("application/pdf"),
                    ),
                });
            }
            None => text.push_str(result.output.trim_end_matches(['\r', '\n'])),
        }
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("[lane: {lane}]"));
    blocks.push(ContentBlock::text(text));

    let failed: Vec<&LineResult> = results.iter().filter(|r| !r.ok).collect();
    if failed.is_empty() {
        return CallToolResult::success(blocks);
    }
    let first = failed[0];
    let failure = first.failure.clone().unwrap_or(Failure {
        reason: "command_failed".into(),
        retryable: false,
        hint: "Read the error above; `<command> --help` shows usage.".into(),
    });
    let mut result = CallToolResult::error(blocks);
    result.structured_content = Some(json!({
        "reason": failure.reason,
        "retryable": failure.retryable && failed.iter().all(|r| r.failure.as_ref().is_some_and(|f| f.retryable)),
        "hint": failure.hint,
        "lane": lane,
        "failed_lines": failed.iter().map(|r| json!({
            "line": r.line,
            "reason": r.failure.as_ref().map_or("command_failed", |f| f.reason.as_str()),
        })).collect::<Vec<_>>(),
        "lines_run": results.len(),
    }));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(line: &str, ok: bool, output: &str, failure: Option<Failure>) -> LineResult {
        LineResult {
            line: line.into(),
            ok,
            output: output.into(),
            failure,
        }
    }

    fn outcome(lines: Vec<LineResult>, lane: &str) -> CallOutcome {
        CallOutcome {
            lines,
            lane: lane.into(),
        }
    }

    fn text_of(result: &CallToolResult) -> String {
        result
            .content
            .iter()
            .filter_map(|b| b.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("")
    }

    #[test]
    fn single_line_success_has_output_and_lane() {
        let r = compose(outcome(vec![line("pwd", true, "~", None)], "shared"));
        assert_eq!(r.is_error, Some(false));
        assert_eq!(text_of(&r), "~\n[lane: shared]");
        assert!(
            r.structured_content.is_none(),
            "success carries no structuredContent"
        );
    }

    #[test]
    fn several_lines_get_headers_and_a_failure_marks_the_call() {
        let r = compose(outcome(
            vec![
                line("pwd", true, "~", None),
                line("bogus", false, "domshell: bogus: command not found", None),
                line("tabs", true, "(no tabs)\r\n", None),
            ],
            "42",
        ));
        assert_eq!(
            text_of(&r),
            "$ pwd\n~\n$ bogus\ndomshell: bogus: command not found\n$ tabs\n(no tabs)\n[lane: 42]"
        );
        assert_eq!(r.is_error, Some(true));
        let s = r.structured_content.unwrap();
        assert_eq!(s["reason"], "command_failed");
        assert_eq!(s["failed_lines"][0]["line"], "bogus");
        assert_eq!(s["lane"], "42");
    }

    #[test]
    fn screenshots_become_image_blocks() {
        let r = compose(outcome(
            vec![line(
                "screenshot",
                true,
                "__SCREENSHOT_BASE64__iVBORw0KGgo=",
                None,
            )],
            "shared",
        ));
        assert_eq!(r.content.len(), 3);
        assert_eq!(
            r.content[0].as_text().map(|t| t.text.as_str()),
            Some("[screenshot: image/png, 1 KB]")
        );
        let image = r.content[1].as_image().expect("an image block");
        assert_eq!(image.mime_type, "image/png");
        assert_eq!(image.data, "iVBORw0KGgo=");
        assert_eq!(
            r.content[2].as_text().map(|t| t.text.as_str()),
            Some("[lane: shared]")
        );
        // The extension's own form names the type and the size.
        let shot = shared_protocol::attachments::image_output("image/webp", 640, 360, "UklGRg==");
        let r = compose(outcome(
            vec![line("screenshot", true, &shot, None)],
            "shared",
        ));
        assert_eq!(
            r.content[0].as_text().map(|t| t.text.as_str()),
            Some("[screenshot: 640×360 image/webp, 1 KB]")
        );
        assert_eq!(r.content[1].as_image().unwrap().mime_type, "image/webp");
    }

    #[test]
    fn a_pdf_becomes_an_embedded_resource() {
        let pdf = shared_protocol::attachments::pdf_output("JVBERi0xLjQ=");
        let r = compose(outcome(vec![line("pdf", true, &pdf, None)], "shared"));
        let value = serde_json::to_value(&r.content[1]).unwrap();
        assert_eq!(value["type"], "resource", "{value}");
        assert_eq!(value["resource"]["mimeType"], "application/pdf");
        assert_eq!(value["resource"]["blob"], "JVBERi0xLjQ=");
        assert!(text_of(&r).starts_with("[pdf: 1 KB, attached as a resource]"));
    }

    #[test]
    fn retryable_only_when_every_failure_is() {
        let link = Failure {
            reason: "extension_link_lost".into(),
            retryable: true,
            hint: "retry".into(),
        };
        let r = compose(outcome(
            vec![line("pwd", false, "Error: lost", Some(link.clone()))],
            "shared",
        ));
        assert_eq!(r.structured_content.as_ref().unwrap()["retryable"], true);
        let r = compose(outcome(
            vec![
                line("pwd", false, "Error: lost", Some(link)),
                line("x", false, "nope", None),
            ],
            "shared",
        ));
        assert_eq!(r.structured_content.as_ref().unwrap()["retryable"], false);
    }
}
