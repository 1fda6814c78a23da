// Every metric the Grafana dashboard (deploy/grafana/dashboards/squad.json) and the alert rules
// (deploy/prometheus/rules/squad.yml) query exists in a real /metrics scrape of squad serve, with the labels they
// match and group by: a renamed metric or label fails here instead of leaving an empty panel or a silent alert.
// The one exception is deploy/prometheus/planned-metrics.yaml, the metrics proposed but not exposed yet: those
// are held to the labels proposed there, must not be in /metrics already (then they leave the list) and must be
// queried by something.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSim } from '../js/harness.mjs';
import { readsOf, scraped } from './promql.mjs';
import { read, readYaml } from './lib.mjs';

// Series Prometheus makes itself for every target, not squad serve.
const synthetic = new Set(['up']);

// Planned metric -> its proposed labels; a histogram's series are NAME_bucket (with le), NAME_count, NAME_sum.
const plannedFile = 'deploy/prometheus/planned-metrics.yaml';
const planned = new Map();
for (const [name, m] of Object.entries(readYaml(plannedFile))) {
  assert.match(m.type, /^(counter|gauge|histogram)$/, `${plannedFile}: ${name}`);
  assert.ok(Array.isArray(m.labels) && m.help && m.issue, `${plannedFile}: ${name} needs labels, help and issue`);
  if (m.type === 'histogram') {
    planned.set(`${name}_bucket`, { base: name, labels: new Set([...m.labels, 'le']) });
    for (const s of ['count', 'sum']) planned.set(`${name}_${s}`, { base: name, labels: new Set(m.labels) });
  } else planned.set(name, { base: name, labels: new Set(m.labels) });
}

const dashboard = JSON.parse(read('deploy/grafana/dashboards/squad.json'));
const panelExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })));
const variableExprs = dashboard.templating.list
  .filter((v) => v.type === 'query')
  .map((v) => {
    const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(v.definition);
    assert.ok(m, `variable ${v.name}: ${v.definition}`);
    return { where: `variable ${v.name}`, expr: `${m[1]}{${m[2]}=""}` };
  });
const ruleExprs = readYaml('deploy/prometheus/rules/squad.yml')
  .groups.flatMap((g) => g.rules)
  .map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr }));

// Real traffic: chat calls (limiter waits, upstream calls, events) and a run (budget decisions).
async function traffic(squad) {
  const chat = (model) =>
    fetch(squad.url('/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 }),
    }).then((r) => r.text());
  await Promise.all([chat('persona/analyst'), chat('persona/analyst'), chat('persona/dev')]);
  const started = await fetch(squad.url('/v1/runs'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task: 'Say hello', workflow: 'quick' }),
  });
  assert.equal(started.status, 202, await started.clone().text());
  const { id } = await started.json();
  const deadline = Date.now() + 60000;
  for (;;) {
    const run = await (await fetch(squad.url(`/v1/runs/${id}`))).json();
    if (run.state !== 'running') return run;
    assert.ok(Date.now() < deadline, 'the run ends within 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('dashboard and rule metrics against a real scrape', () => {
  let squad;
  let metrics;

  before(async () => {
    squad = await startSim();
    await traffic(squad);
    const res = await fetch(squad.url('/metrics'));
    assert.equal(res.status, 200);
    metrics = scraped(await res.text());
  });

  after(async () => {
    if (squad) assert.equal(await squad.stop(), 0, squad.stderr());
  });

  for (const [kind, exprs] of [['dashboard', [...panelExprs, ...variableExprs]], ['alert rules', ruleExprs]]) {
    it(`every metric and label the ${kind} query is in /metrics`, () => {
      assert.ok(exprs.length >= 7, `${kind}: ${exprs.length} queries`);
      const problems = [];
      for (const { where, expr } of exprs) {
        const { selectors, grouping } = readsOf(expr);
        if (!selectors.length) problems.push(`${where}: reads no metric: ${expr}`);
        const seen = new Set();
        for (const { name, labels } of selectors) {
          if (synthetic.has(name)) continue;
          const have = metrics.get(name) ?? planned.get(name)?.labels;
          if (!have) {
            problems.push(`${where}: ${name} is not in /metrics (nor in ${plannedFile})`);
            continue;
          }
          have.forEach((l) => seen.add(l));
          for (const l of labels) if (!have.has(l)) problems.push(`${where}: ${name} has no label ${l}`);
        }
        const real = selectors.some((s) => !synthetic.has(s.name));
        if (real) for (const l of grouping) if (!seen.has(l)) problems.push(`${where}: groups by ${l}, which no metric it reads has`);
      }
      assert.deepEqual(problems, []);
    });
  }

  it(`every metric of ${plannedFile} is still missing from /metrics, and queried`, () => {
    assert.ok(planned.size > 0);
    const exposed = [...planned].filter(([name]) => metrics.has(name)).map(([name, p]) => p.base);
    assert.deepEqual([...new Set(exposed)], [], `squad serve exposes these now: move them out of ${plannedFile}`);
    const read = new Set([...panelExprs, ...variableExprs, ...ruleExprs].flatMap(({ expr }) => readsOf(expr).selectors.map((s) => s.name)));
    const queried = new Set([...planned].filter(([name]) => read.has(name)).map(([, p]) => p.base));
    const stale = [...new Set([...planned.values()].map((p) => p.base))].filter((b) => !queried.has(b));
    assert.deepEqual(stale, [], `nothing queries these: drop them from ${plannedFile}`);
  });

  it('the PromQL reader finds names, matchers and groupings (and so would catch a typo)', () => {
    const r = readsOf('histogram_quantile(0.95, sum by (class, le) (rate(squad_x_bucket{provider=~"$p",a!="b"}[$__rate_interval]))) / on(provider) squad_y > 0.8 and up');
    assert.deepEqual(r.selectors, [{ name: 'squad_x_bucket', labels: ['provider', 'a'] }, { name: 'squad_y', labels: [] }, { name: 'up', labels: [] }]);
    assert.deepEqual(r.grouping, ['class', 'le', 'provider']);
    assert.ok(!metrics.has('squad_limiter_window_ocupancy'));
    assert.ok(metrics.get('squad_limiter_wait_seconds_bucket')?.has('class'), 'limiter waits are labelled by class');
  });
});
