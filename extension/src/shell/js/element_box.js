// The element's box in page coordinates (CSS pixels), for a screenshot clip; scrolled into
// view first so lazily drawn content is there.
function() {
  if (this.scrollIntoView) this.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  const r = this.getBoundingClientRect();
  return { x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height, dpr: devicePixelRatio || 1 };
}
