// Whether an element's text contains `needle` (already lower-cased), answered in the page so
// a search reads no text over CDP. `SOURCE` (replaced by the caller) returns the text.
function (needle) {
  return String((SOURCE).call(this) || '').toLowerCase().includes(needle);
}
