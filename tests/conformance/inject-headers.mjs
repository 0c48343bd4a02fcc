// Preloaded into the conformance CLI (`node --import`) to add fixed HTTP headers — e.g.
// `Authorization: Bearer <token>` — to every request it sends to the server under test.
//
// Why: the suite has no option for custom headers, and its scenarios reach the server four
// ways: the TypeScript SDK client over global `fetch`, raw `fetch` and `undici.request` (all
// three go through undici's global dispatcher, so one interceptor covers them), and
// `node:http`'s `request` (http-header-validation sends its hand-made requests that way, so
// `http.request`/`http.get` are wrapped too; without that its tools/call probes arrive
// without the token and measure the server's 401 instead of its header validation).
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

import http from 'node:http';
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

  // node:http: `request(url[, options][, cb])` or `request(options[, cb])`. The suite imports
  // the module's default export and looks `request` up at call time, so replacing the
  // properties is enough.
  const httpOrigin = (options) => {
    try {
      let host = options.hostname ?? options.host ?? 'localhost';
      if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
      const port = options.port ? `:${options.port}` : '';
      return new URL(`${options.protocol ?? 'http:'}//${host}${port}`).origin;
    } catch {
      return null;
    }
  };
  const withHeaders = (headers) => {
    if (Array.isArray(headers)) {
      // The raw [k, v, k, v] form node:http also accepts.
      const flat = flatten(headers);
      const present = new Set();
      for (let i = 0; i < flat.length; i += 2) present.add(String(flat[i]).toLowerCase());
      Object.entries(extra).forEach(([name, value], i) => {
        if (!present.has(names[i])) flat.push(name, String(value));
      });
      return flat;
    }
    const out = { ...(headers ?? {}) };
    const present = new Set(Object.keys(out).map((k) => k.toLowerCase()));
    Object.entries(extra).forEach(([name, value], i) => {
      if (!present.has(names[i])) out[name] = String(value);
    });
    return out;
  };
  const wrapHttp = (original) =>
    function (...args) {
      let target;
      if (typeof args[0] === 'string' || args[0] instanceof URL) {
        target = new URL(String(args[0])).origin;
        const hasOptions = args[1] != null && typeof args[1] === 'object';
        const options = hasOptions ? args[1] : {};
        if (origin === null || target === origin) {
          const patched = { ...options, headers: withHeaders(options.headers) };
          args = hasOptions ? [args[0], patched, ...args.slice(2)] : [args[0], patched, ...args.slice(1)];
        }
      } else if (args[0] != null && typeof args[0] === 'object') {
        target = httpOrigin(args[0]);
        if (origin === null || target === origin) {
          args = [{ ...args[0], headers: withHeaders(args[0].headers) }, ...args.slice(1)];
        }
      }
      return original.apply(this, args);
    };
  http.request = wrapHttp(http.request);
  http.get = wrapHttp(http.get);
}
