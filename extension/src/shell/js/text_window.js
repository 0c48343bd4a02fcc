// A window of an element's text, cut in the page so a huge text never crosses CDP whole.
// `SOURCE` (replaced by the caller) is a function returning the element's text. The text is
// normalised as the shell shows it (CRLF to LF, trimmed, no spaces or tabs at line ends,
// no blank lines: a table is one line per row, its cells apart by tabs, and paragraphs do
// not cost an empty line each; with `trimLines` every line trimmed). Counts are code
// points, as the shell counts characters. From code point `offset` on, at most `count` code points come back, and fewer when their printed size
// (a newline prints as two characters, CRLF) would pass `budget`.
function (offset, count, budget, trimLines) {
  let t = (SOURCE).call(this);
  t = String(t === undefined || t === null ? '' : t)
    .replace(/\r\n/g, '\n')
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{2,}/g, '\n')
    .trim();
  if (trimLines) {
    t = t.split('\n').map((l) => l.trim()).join('\n');
  }
  const n = t.length;
  const step = (i) => {
    const c = t.charCodeAt(i);
    return c >= 0xd800 && c < 0xdc00 && i + 1 < n && (t.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
  };
  let i = 0;
  let cp = 0;
  while (i < n && cp < offset) {
    i += step(i);
    cp++;
  }
  const start = i;
  let shown = 0;
  let cost = 0;
  while (i < n && shown < count) {
    const c = t.charCodeAt(i) === 10 ? 2 : 1;
    if (cost + c > budget) {
      break;
    }
    cost += c;
    i += step(i);
    shown++;
  }
  const end = i;
  let total = cp + shown;
  let moreLines = end < n ? 1 : 0;
  while (i < n) {
    if (t.charCodeAt(i) === 10) {
      moreLines++;
    }
    i += step(i);
    total++;
  }
  return { text: t.slice(start, end), shown, total, moreLines };
}
