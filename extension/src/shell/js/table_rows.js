// The rows of a table (HTML or ARIA) as arrays of cell texts, paged in the page: the header
// row, then at most `limit` data rows from data row `offset`, fewer when their text would
// pass `budget` characters (at least one), every cell cut to `budget`. `total` counts the
// data rows.
function (offset, limit, budget) {
  const cellText = (c) => (c.innerText || c.textContent || '').replace(/\s+/g, ' ').trim().slice(0, budget);
  const rows = this.rows ? Array.from(this.rows) : Array.from(this.querySelectorAll('[role=row]'));
  const cellsOf = (r) => (r.cells ? Array.from(r.cells) : Array.from(r.querySelectorAll('[role=cell],[role=gridcell],[role=columnheader],[role=rowheader]'))).map(cellText);
  if (rows.length === 0) {
    return { header: [], rows: [], total: 0 };
  }
  const header = cellsOf(rows[0]);
  const out = [];
  let used = header.reduce((a, c) => a + c.length + 3, 0);
  for (let i = 1 + offset; i < rows.length && out.length < limit; i++) {
    const cells = cellsOf(rows[i]);
    const len = cells.reduce((a, c) => a + c.length + 3, 0);
    if (out.length > 0 && used + len > budget) {
      break;
    }
    used += len;
    out.push(cells);
  }
  return { header, rows: out, total: rows.length - 1 };
}
