// Preloaded into the conformance CLI (`node --import`) to add fixed HTTP headers — e.g.
// `Authorization: Bearer <token>` — to every request it sends to the server under test.
//
// Why: the suite has no option for custom headers, and its scenarios reach the server three
// ways (the TypeScript SDK client over global `fetch`, raw `fetch`, and `undici.request`).
// All three go through undici's global dispatcher, so one interceptor covers them.
//
// This file must live next to the suite's `node_modules` (the Rust harness copies it into the
// install directory) so that the bare `undici` import resolves to the suite's own undici.
//
// Environment:
//   DOMSHELL_CONFORMANCE_HEADERS  JSON object of header name -> value (required)
//   DOMSHELL_CONFORMANCE_ORIGIN   only requests to this origin (e.g. http://127.0.0.1:8080)
//                                 get the headers, so a token never leaks anywhere else
//
// A header the request already carries is left alone: scenarios that deliberately send their
// own value (or probe a missing one) keep doing so.

import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';

const raw = process.env.DOMSHELL_CONFORMANCE_HEADERS;
if (raw) {
  let extra;
  try {
    extra = JSON.parse(raw);
  } catch (e) {
    // Fail loudly: a silently unauthenticated run would report misleading 401 failures.
    console.error(`inject-headers: DOMSHELL_CONFORMANCE_HEADERS is not JSON: ${e.message}`);
    process.exit(70);
  }
  const origin = process.env.DOMSHELL_CONFORMANCE_ORIGIN || null;
  const names = Object.keys(extra).map((n) => n.toLowerCase());

  // undici passes headers as a flat [k, v, k, v] array, an object, or an iterable of pairs;
  // normalise to the flat array form, which every undici version accepts.
  const flatten = (headers) => {
    if (headers == null) return [];
    if (Array.isArray(headers)) {
      if (headers.length > 0 && Array.isArray(headers[0])) return headers.flat();
      return [...headers];
    }
    if (typeof headers[Symbol.iterator] === 'function') return [...headers].flat();
    const out = [];
    for (const [k, v] of Object.entries(headers)) {
      if (Array.isArray(v)) for (const item of v) out.push(k, item);
      else if (v !== undefined) out.push(k, v);
    }
    return out;
  };

  const requestOrigin = (opts) => {
    try {
      return new URL(String(opts.origin)).origin;
    } catch {
      return null;
    }
  };

  const inject = (dispatch) => (opts, handler) => {
    if (origin === null || requestOrigin(opts) === origin) {
      const flat = flatten(opts.headers);
      const present = new Set();
      for (let i = 0; i < flat.length; i += 2) present.add(String(flat[i]).toLowerCase());
      Object.entries(extra).forEach(([name, value], i) => {
        if (!present.has(names[i])) flat.push(name, String(value));
      });
      opts = { ...opts, headers: flat };
    }
    return dispatch(opts, handler);
  };

  // Node's built-in fetch and the suite's undici share the global dispatcher slot.
  const base = getGlobalDispatcher() ?? new Agent();
  setGlobalDispatcher(base.compose(inject));
}
