// Installs (once per document, in this extension's isolated world, where the page's own
// scripts can neither see nor pre-define it) the change tracker and returns `{doc, n, over,
// hidden}`: a token of this document, how many changes it has seen, whether they were too
// many to track one by one, and whether the tab is in the background. Changed elements are
// remembered (at most 64, then `over`): the parents whose child lists changed (`lists`), and
// the elements whose subtree must be read again (`sub`: added elements, parents of changed
// text, elements whose attributes or form state changed). An added frame (`iframe`, `frame`)
// makes `over`: its document must be read whole. Attributes are limited to those that change
// what the accessibility tree shows. `__KEY__` is replaced by the caller.
(() => {
  const key = Symbol.for('__KEY__');
  let s = window[key];
  if (!s) {
    s = { doc: Math.random().toString(36).slice(2) + Date.now().toString(36), n: 0,
      sub: new Set(), lists: new Set(), over: false };
    const note = (set, node) => {
      if (s.over || !node) return;
      const el = node.nodeType === 1 ? node : node.parentElement;
      if (!el || s.sub.size + s.lists.size >= 64) { s.over = true; s.sub.clear(); s.lists.clear(); return; }
      set.add(el);
    };
    try {
      new MutationObserver((records) => {
        s.n += records.length;
        for (const r of records) {
          if (r.type !== 'childList') { note(s.sub, r.target); continue; }
          note(s.lists, r.target);
          for (const added of r.addedNodes) {
            if (added.nodeType === 1 && (added.matches('iframe,frame') || added.querySelector('iframe,frame'))) {
              s.over = true; s.sub.clear(); s.lists.clear();
            }
            note(s.sub, added.nodeType === 1 ? added : r.target);
          }
        }
      }).observe(document, {
        subtree: true, childList: true, characterData: true, attributes: true,
        attributeFilter: ['hidden', 'aria-hidden', 'aria-label', 'aria-expanded', 'aria-checked',
          'aria-selected', 'disabled', 'open', 'href', 'role', 'style', 'class', 'value', 'alt', 'title'],
      });
      for (const type of ['input', 'change']) {
        addEventListener(type, (e) => { s.n += 1; note(s.sub, e.composedPath()[0]); }, true);
      }
    } catch (e) { s.n = -1; }
    Object.defineProperty(window, key, { value: s });
  }
  return { doc: s.doc, n: s.n, over: s.over, hidden: document.visibilityState === 'hidden' };
})()
