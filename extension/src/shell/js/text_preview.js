// An element's text for a one-line preview: whitespace runs folded into one space, the first
// `width + 1` code points (one more tells the caller it was cut) and the folded length in
// code points. `SOURCE` (replaced by the caller) returns the element's text. Only the
// preview crosses CDP, however long the text is.
function (width) {
  const t = String((SOURCE).call(this) || '').replace(/\s+/g, ' ').trim();
  let length = 0;
  let cut = -1;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && (t.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      i++;
    }
    length++;
    if (length === width + 1) {
      cut = i + 1;
    }
  }
  return { text: cut < 0 ? t : t.slice(0, cut), length };
}
