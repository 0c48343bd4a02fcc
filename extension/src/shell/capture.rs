//! `screenshot` and `pdf`: the page as an image or a document, sized for a context window.
//!
//! It owns choosing the clip (the viewport, the whole page, or one element's box), the
//! scale that keeps the image within a width, and the encoding steps that keep the default
//! image under [`TARGET_IMAGE_BYTES`]. It must not cut or reshape the data afterwards: the
//! output is the shared attachment format ([`shared_protocol::attachments`]), which the reply
//! cap lets through whole or refuses.

use serde_json::{json, Value};
use shared_protocol::attachments;
use shared_protocol::grammar::{Args, Command};

use super::browser::Browser;
use super::reading::{number, open};
use super::session::Session;
use super::Context;

/// Width an image is scaled down to by default, in pixels.
pub const DEFAULT_MAX_WIDTH: u32 = 1280;
/// The narrowest and widest `--max-width` accepted.
const MIN_WIDTH: u32 = 100;
const MAX_WIDTH: u32 = 4096;
/// What a screenshot aims to stay under (decoded bytes): re-encoded, then scaled down, until
/// it does (within [`ENCODINGS`]).
pub const TARGET_IMAGE_BYTES: usize = 400 * 1024;
/// JPEG quality and extra scale of each try, in order.
const ENCODINGS: [(u32, f64); 4] = [(80, 1.0), (60, 1.0), (60, 0.7), (50, 0.5)];
/// Tallest full-page capture, in CSS pixels (Chrome's own texture limit is near 16k).
const MAX_FULL_HEIGHT: f64 = 16_000.0;
/// Largest PDF returned (decoded bytes); the reply's frame must hold its base64.
const MAX_PDF_BYTES: usize = 8 * 1024 * 1024;

const ELEMENT_BOX: &str = page_js!("element_box.js");

/// A region of the page in CSS pixels, and the device pixel ratio it is drawn at.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Clip {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
    dpr: f64,
}

impl Clip {
    fn from_box(value: &Value) -> Option<Clip> {
        let n = |k: &str| value[k].as_f64().filter(|v| v.is_finite());
        Some(Clip {
            x: n("x")?.max(0.0),
            y: n("y")?.max(0.0),
            width: n("w")?,
            height: n("h")?,
            dpr: n("dpr").filter(|d| *d > 0.0).unwrap_or(1.0),
        })
        .filter(|c| c.width >= 1.0 && c.height >= 1.0)
    }

    /// The scale that draws it at most `max_width` pixels wide (never enlarged).
    fn scale_for(&self, max_width: u32) -> f64 {
        (f64::from(max_width) / (self.width * self.dpr)).min(1.0)
    }

    /// The image's size in pixels at `scale`.
    fn pixels(&self, scale: f64) -> (u32, u32) {
        let px = |css: f64| (css * self.dpr * scale).round().max(1.0) as u32;
        (px(self.width), px(self.height))
    }
}

pub(crate) async fn run<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    cmd: &Command,
    args: &Args,
) -> Result<String, String> {
    if cmd.name == "pdf" {
        return pdf(session, browser, ctx, args).await;
    }
    let target = match args.positional.as_slice() {
        [] => None,
        [one] => Some(one.as_str()),
        _ => return Err("one element at most; quote a name with spaces".into()),
    };
    if target.is_some() && args.has("--full") {
        return Err("--full captures the whole page; give no element with it".into());
    }
    let max_width = match number(cmd, args, "--max-width")? {
        None => DEFAULT_MAX_WIDTH,
        Some(w) if (MIN_WIDTH as usize..=MAX_WIDTH as usize).contains(&w) => w as u32,
        Some(w) => {
            return Err(format!(
                "--max-width takes {MIN_WIDTH} to {MAX_WIDTH} pixels, not {w}"
            ))
        }
    };
    let tab = super::navigation::require_page(session, browser, ctx, "screenshot").await?;
    let id = tab.id.unwrap_or_default();
    let (clip, beyond_viewport) = match target {
        Some(name) => (element_clip(session, browser, ctx, name).await?, true),
        None => {
            let metrics = browser
                .cdp(id, "Page.getLayoutMetrics", json!({}))
                .await
                .map_err(super::plain)?;
            (page_clip(&metrics, args.has("--full"))?, args.has("--full"))
        }
    };
    let base = clip.scale_for(max_width);
    let mut last = String::new();
    for (quality, extra) in ENCODINGS {
        let scale = base * extra;
        let shot = browser
            .cdp(
                id,
                "Page.captureScreenshot",
                json!({
                    "format": "jpeg",
                    "quality": quality,
                    "captureBeyondViewport": beyond_viewport,
                    "clip": {"x": clip.x, "y": clip.y, "width": clip.width,
                             "height": clip.height, "scale": scale},
                }),
            )
            .await
            .map_err(super::plain)?;
        let data = shot["data"]
            .as_str()
            .filter(|d| !d.is_empty())
            .ok_or("Chrome returned no image (is the tab visible?)")?;
        let (w, h) = clip.pixels(scale);
        last = attachments::image_output("image/jpeg", w, h, data);
        if data.len() / 4 * 3 <= TARGET_IMAGE_BYTES {
            break;
        }
    }
    Ok(last)
}

/// The viewport, or with `full` the whole document (up to [`MAX_FULL_HEIGHT`]), from
/// `Page.getLayoutMetrics` (no page script runs).
fn page_clip(metrics: &Value, full: bool) -> Result<Clip, String> {
    let viewport = &metrics["cssLayoutViewport"];
    let n = |v: &Value, k: &str| v[k].as_f64().filter(|x| x.is_finite() && *x >= 0.0);
    let (Some(width), Some(height)) = (n(viewport, "clientWidth"), n(viewport, "clientHeight"))
    else {
        return Err("Chrome did not say how large the page is (Page.getLayoutMetrics)".into());
    };
    // Device pixels per CSS pixel: the same viewport in both units.
    let dpr = n(&metrics["layoutViewport"], "clientWidth")
        .filter(|_| width > 0.0)
        .map(|device| device / width)
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    let clip = if full {
        let content = &metrics["cssContentSize"];
        Clip {
            x: 0.0,
            y: 0.0,
            width: n(content, "width").unwrap_or(width).max(1.0),
            height: n(content, "height")
                .unwrap_or(height)
                .clamp(1.0, MAX_FULL_HEIGHT),
            dpr,
        }
    } else {
        Clip {
            x: n(viewport, "pageX").unwrap_or(0.0),
            y: n(viewport, "pageY").unwrap_or(0.0),
            width: width.max(1.0),
            height: height.max(1.0),
            dpr,
        }
    };
    Ok(clip)
}

/// One element's box, scrolled into view, in page coordinates.
async fn element_clip<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    name: &str,
) -> Result<Clip, String> {
    let mut page = open(session, browser, ctx, "screenshot").await?;
    page.prepare(session, browser, ctx, Some(name), false)
        .await?;
    let (id, _) = page.entry_at(session, "screenshot", Some(name))?;
    let entry = page.entry(id)?;
    if entry.frame_id != page.main_frame && !entry.frame_id.is_empty() {
        return Err(format!(
            "{name} is inside a frame; capture the page (`screenshot`) or the frame's element on the page"
        ));
    }
    let answer = page.dom(browser).call_on(entry, ELEMENT_BOX, &[]).await?;
    Clip::from_box(&answer).ok_or_else(|| format!("{name} has no box on the page (is it hidden?)"))
}

async fn pdf<B: Browser>(
    session: &mut Session,
    browser: &B,
    ctx: &Context,
    args: &Args,
) -> Result<String, String> {
    if !args.positional.is_empty() {
        return Err("takes no arguments (it prints the whole page)".into());
    }
    let tab = super::navigation::require_page(session, browser, ctx, "pdf").await?;
    let printed = browser
        .cdp(
            tab.id.unwrap_or_default(),
            "Page.printToPDF",
            json!({
                "landscape": args.has("--landscape"),
                "printBackground": args.has("--background"),
            }),
        )
        .await
        .map_err(super::plain)?;
    let data = printed["data"]
        .as_str()
        .filter(|d| !d.is_empty())
        .ok_or("Chrome returned no PDF")?;
    if data.len() / 4 * 3 > MAX_PDF_BYTES {
        return Err(format!(
            "the PDF is {} MB, over the {} MB a reply may carry; print a shorter page",
            (data.len() / 4 * 3).div_ceil(1024 * 1024),
            MAX_PDF_BYTES / (1024 * 1024)
        ));
    }
    Ok(attachments::pdf_output(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_page_is_scaled_to_the_width_and_never_enlarged() {
        let clip = Clip {
            x: 0.0,
            y: 0.0,
            width: 2560.0,
            height: 1440.0,
            dpr: 1.0,
        };
        assert_eq!(clip.scale_for(1280), 0.5);
        assert_eq!(clip.pixels(0.5), (1280, 720));
        let small = Clip {
            width: 400.0,
            height: 300.0,
            ..clip
        };
        assert_eq!(small.scale_for(1280), 1.0);
        let retina = Clip { dpr: 2.0, ..small };
        assert_eq!(retina.scale_for(400), 0.5);
        assert_eq!(retina.pixels(0.5), (400, 300));
    }

    #[test]
    fn the_page_clip_is_the_viewport_or_the_whole_document() {
        let metrics = json!({
            "cssLayoutViewport": {"pageX": 0, "pageY": 600, "clientWidth": 800, "clientHeight": 600},
            "layoutViewport": {"clientWidth": 1600, "clientHeight": 1200},
            "cssContentSize": {"width": 800, "height": 90000},
        });
        let viewport = page_clip(&metrics, false).unwrap();
        assert_eq!(
            (viewport.y, viewport.height, viewport.dpr),
            (600.0, 600.0, 2.0)
        );
        let full = page_clip(&metrics, true).unwrap();
        assert_eq!((full.y, full.height), (0.0, MAX_FULL_HEIGHT));
        assert!(page_clip(&json!({}), false).is_err());
    }

    #[test]
    fn an_element_box_needs_a_size() {
        assert_eq!(
            Clip::from_box(&json!({"x": -5, "y": 10, "w": 30, "h": 20, "dpr": 1})),
            Some(Clip {
                x: 0.0,
                y: 10.0,
                width: 30.0,
                height: 20.0,
                dpr: 1.0
            })
        );
        assert_eq!(
            Clip::from_box(&json!({"x": 0, "y": 0, "w": 0, "h": 20})),
            None
        );
    }
}
