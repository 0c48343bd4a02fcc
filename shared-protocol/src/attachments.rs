//! Binary results inside a command's text output: a screenshot or a PDF, carried in the one
//! `RESULT` text as a marker, a few `;`-separated fields and the base64 data.
//!
//! It owns that format, for the extension that writes it and the server that turns it into
//! an MCP image or embedded resource. It must not encode images or documents itself.

/// What a screenshot's output starts with (DOMShell's marker, kept for compatibility: after
/// it, the bare base64 data of a PNG is read as such).
pub const SCREENSHOT_MARK: &str = "__SCREENSHOT_BASE64__";
/// What a PDF's output starts with.
pub const PDF_MARK: &str = "__PDF_BASE64__";

/// A binary result, as read from an output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binary<'a> {
    Image {
        mime: &'a str,
        /// Pixels, when the extension said.
        size: Option<(u32, u32)>,
        data: &'a str,
    },
    Pdf {
        data: &'a str,
    },
}

impl Binary<'_> {
    /// Bytes of the decoded data (base64 carries three bytes in four characters).
    pub fn bytes(&self) -> usize {
        let data = match self {
            Binary::Image { data, .. } | Binary::Pdf { data } => data.trim_end(),
        };
        let padding = data.bytes().rev().take_while(|b| *b == b'=').count();
        (data.len() / 4 * 3).saturating_sub(padding)
    }
}

/// A screenshot's output: `image/webp;1280x720;<base64>`.
pub fn image_output(mime: &str, width: u32, height: u32, data: &str) -> String {
    format!("{SCREENSHOT_MARK}{mime};{width}x{height};{data}")
}

/// A PDF's output.
pub fn pdf_output(data: &str) -> String {
    format!("{PDF_MARK}{data}")
}

/// Whether `output` carries binary data (which no text cap may cut).
pub fn is_binary(output: &str) -> bool {
    output.starts_with(SCREENSHOT_MARK) || output.starts_with(PDF_MARK)
}

/// The binary result `output` carries, if any. Base64 has no `;`, so the fields in front of
/// the data are told apart from it without ambiguity.
pub fn read(output: &str) -> Option<Binary<'_>> {
    if let Some(data) = output.strip_prefix(PDF_MARK) {
        return Some(Binary::Pdf { data: data.trim() });
    }
    let rest = output.strip_prefix(SCREENSHOT_MARK)?;
    let mut fields = rest.splitn(3, ';');
    match (fields.next(), fields.next(), fields.next()) {
        (Some(mime), Some(size), Some(data)) if mime.starts_with("image/") => {
            let size = size
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
            Some(Binary::Image {
                mime,
                size,
                data: data.trim(),
            })
        }
        _ => Some(Binary::Image {
            mime: "image/png",
            size: None,
            data: rest.trim(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_pdfs_read_back_as_written() {
        let shot = image_output("image/webp", 1280, 720, "UklGRg==");
        assert!(is_binary(&shot));
        assert_eq!(
            read(&shot),
            Some(Binary::Image {
                mime: "image/webp",
                size: Some((1280, 720)),
                data: "UklGRg=="
            })
        );
        let pdf = pdf_output("JVBERi0=");
        assert_eq!(read(&pdf), Some(Binary::Pdf { data: "JVBERi0=" }));
        assert_eq!(read(&pdf).unwrap().bytes(), 5);
        assert_eq!(read("plain text"), None);
        assert!(!is_binary("plain text"));
    }

    #[test]
    fn the_bare_marker_of_the_original_shell_is_a_png() {
        assert_eq!(
            read("__SCREENSHOT_BASE64__iVBORw0KGgo="),
            Some(Binary::Image {
                mime: "image/png",
                size: None,
                data: "iVBORw0KGgo="
            })
        );
    }
}
