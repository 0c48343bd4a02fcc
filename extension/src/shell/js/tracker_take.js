// Hands over (and forgets) the changed elements: an array of the outermost elements whose
// subtrees must be read again, then the parents whose child lists changed, then a string
// `kinds:` + one letter per element (`s`, `l`). Elements whose labels or descriptions come
// from a changed element (`<label>`, `aria-labelledby`, `aria-describedby`) are added, as is
// the focused element after an interaction (`__ACTIVE__`). A string (why not) when the page
// cannot say: the page must then be read whole.
(() => {
  const s = window[Symbol.for('__KEY__')];
  if (!s) return 'the change tracker is not installed';
  if (s.over) return 'they were too many to track';
  const sub = [...s.sub].filter((e) => e.isConnected);
  const lists = [...s.lists].filter((e) => e.isConnected);
  s.sub.clear(); s.lists.clear();
  const active = document.activeElement;
  if (__ACTIVE__ && active && active !== document.body && active !== document.documentElement) sub.push(active);
  const named = new Map();
  for (const el of document.querySelectorAll('[aria-labelledby],[aria-describedby]')) {
    const ids = `${el.getAttribute('aria-labelledby') || ''} ${el.getAttribute('aria-describedby') || ''}`;
    for (const id of ids.split(/\s+/)) if (id) { if (!named.has(id)) named.set(id, []); named.get(id).push(el); }
  }
  for (const e of [...sub, ...lists]) {
    for (let a = e, i = 0; a && i < 32; a = a.parentElement, i++) {
      if (a.id && named.has(a.id)) sub.push(...named.get(a.id));
      if (a.tagName === 'LABEL' && a.control) sub.push(a.control);
    }
  }
  const all = [...new Set(sub)];
  const outer = all.filter((e) => !all.some((o) => o !== e && o.contains(e)));
  const parents = [...new Set(lists)].filter((e) => !outer.some((o) => o.contains(e)));
  if (outer.length + parents.length > 64) return 'they were too many to track';
  return [...outer, ...parents, 'kinds:' + 's'.repeat(outer.length) + 'l'.repeat(parents.length)];
})()
