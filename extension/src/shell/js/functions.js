// `functions`: the page's own global functions (not the browser's built-ins), read from
// property descriptors so that no getter of the page runs: [{name, arity, params}] sorted.
function () {
  const found = [];
  const native = /\{\s*\[native code\]\s*\}\s*$/;
  for (const name of Object.getOwnPropertyNames(window)) {
    let descriptor;
    try {
      descriptor = Object.getOwnPropertyDescriptor(window, name);
    } catch (error) {
      continue;
    }
    const value = descriptor && descriptor.value;
    if (typeof value !== "function") continue;
    let source = "";
    try {
      source = Function.prototype.toString.call(value);
    } catch (error) {
      continue;
    }
    if (native.test(source)) continue;
    const match = source.match(/^[^(]*\(([^)]*)\)/);
    const params = match ? match[1].replace(/\s+/g, " ").trim() : "";
    found.push({ name, arity: value.length, params });
  }
  found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return found;
}
