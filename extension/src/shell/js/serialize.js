// Runs on the value a `js` line produced (`this`), in the page's own world: its text for
// the agent, JSON where it can be (cycles, functions and big integers named, not thrown
// on), at most `limit` characters so a huge object does not cross the protocol whole.
function (limit) {
  const seen = new WeakSet();
  let text;
  try {
    text = JSON.stringify(
      this,
      (key, value) => {
        if (typeof value === "bigint") return `${value}n`;
        if (typeof value === "function") return `[function ${value.name || "anonymous"}]`;
        if (typeof value === "object" && value !== null) {
          if (typeof Node !== "undefined" && value instanceof Node) {
            return `[${value.nodeName.toLowerCase()}${value.id ? "#" + value.id : ""}]`;
          }
          if (seen.has(value)) return "[circular]";
          seen.add(value);
        }
        return value;
      },
      2,
    );
  } catch (error) {
    text = undefined;
  }
  if (text === undefined) text = String(this);
  return text.length > limit ? text.slice(0, limit) : text;
}
