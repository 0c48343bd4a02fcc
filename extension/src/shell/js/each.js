// Calls FUNCTION on each element given (as `this`), with the same extra arguments (the last
// argument, an array); one answer per element, in order: `{ ok: value }`, or `{ error }`
// where it threw. Run by `callFunctionOn` over a batch of nodes of one frame.
function (...items) {
  const args = items.pop() || [];
  const fn = (FUNCTION);
  return Promise.all(items.map(async (el) => {
    try {
      return { ok: await fn.apply(el, args) };
    } catch (e) {
      return { error: String((e && e.message) || e) };
    }
  }));
}
