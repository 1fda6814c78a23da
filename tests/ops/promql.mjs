// The metric names and label names a PromQL expression reads (enough PromQL for our dashboard and rules:
// selectors with matchers, ranges, aggregations with by/without, binary operators, functions).
const keywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);

/** {selectors: [{name, labels}], grouping: [label]} of `expr`. */
export function readsOf(expr) {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""'); // string literals hold values, not names
  e = e.replace(/\[[^\]]*\]/g, ''); // range and subquery durations
  const grouping = [];
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, _k, list) => {
    grouping.push(...list.split(',').map((s) => s.trim()).filter(Boolean));
    return ' ';
  });
  const selectors = [];
  const re = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{([^}]*)\})?(\s*\()?/g;
  for (let m; (m = re.exec(e)); ) {
    const [, name, , matchers, call] = m;
    if (call || keywords.has(name)) continue; // a function or aggregation, or an operator word
    if (/^[0-9]/.test(name)) continue;
    const labels = [...(matchers ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((x) => x[1]);
    selectors.push({ name, labels });
  }
  return { selectors, grouping };
}

/** Metric name -> Set of label names, from a Prometheus text exposition. */
export function scraped(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? /.exec(line);
    if (!m) continue;
    const labels = out.get(m[1]) ?? new Set();
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]);
    out.set(m[1], labels);
  }
  return out;
}
