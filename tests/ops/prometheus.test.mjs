// A real Prometheus (Debian's prometheus binary, on a free loopback port, private storage in a temp dir) scrapes
// squad serve every second and evaluates Squad's alert rules: the scrape is up, the series the dashboard reads
// are queryable over the HTTP API, rates move after chat calls, and every rule evaluates without error.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSim } from '../js/harness.mjs';
import { deployDir, freePort, need, readYaml, start } from './lib.mjs';

const ruleCount = readYaml('deploy/prometheus/rules/squad.yml').groups.flatMap((g) => g.rules).length;

describe('Prometheus scraping squad serve', () => {
  let squad;
  let prom;
  let base;
  let dir;

  const query = async (q) => {
    const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = await res.json();
    assert.equal(body.status, 'success', JSON.stringify(body));
    return body.data.result;
  };
  // Polls `q` until `ok(result)`, for up to 30 s (scrapes and rule evaluations run every second).
  const until = async (q, ok, what) => {
    const deadline = Date.now() + 30000;
    let last;
    for (;;) {
      last = await query(q);
      if (ok(last)) return last;
      if (Date.now() > deadline) assert.fail(`${what}: ${q} gave ${JSON.stringify(last)}\n${prom.output()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  before(async () => {
    need('prometheus', 'prometheus');
    squad = await startSim();
    dir = mkdtempSync(join(tmpdir(), 'squad-ops-prometheus-'));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: {scrape_interval: 1s, evaluation_interval: 1s}',
        `rule_files: ['${join(deployDir, 'prometheus/rules/squad.yml')}']`,
        'scrape_configs:',
        `  - {job_name: squad, static_configs: [{targets: ['127.0.0.1:${squad.port}']}]}`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    prom = start('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ]);
    const deadline = Date.now() + 20000;
    for (;;) {
      const ready = await fetch(`${base}/-/ready`).then((r) => r.status, () => 0);
      if (ready === 200) break;
      assert.ok(prom.child.exitCode === null, `prometheus exited:\n${prom.output()}`);
      assert.ok(Date.now() < deadline, `prometheus not ready within 20 s:\n${prom.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    if (prom) assert.equal(await prom.stop(), 0, prom.output());
    if (squad) assert.equal(await squad.stop(), 0, squad.stderr());
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('scrapes squad serve and answers queries over its HTTP API', async () => {
    await until('up{job="squad"}', (r) => r.length === 1 && r[0].value[1] === '1', 'the target is up');
    const caps = await until('squad_limiter_window_cap', (r) => r.length === 4, 'a window cap per provider');
    assert.deepEqual(caps.map((s) => s.metric.provider).sort(), ['sim-deep', 'sim-steady', 'sim-swift', 'sim-wide']);
    // Chat calls, then their rate. A series is born with its first call, and rate() needs it to move between two
    // scrapes: one call, wait until Prometheus has the series, then more calls.
    const chat = async () => {
      const res = await fetch(squad.url('/v1/chat/completions'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'persona/analyst', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 }),
      });
      assert.equal(res.status, 200, await res.text());
    };
    await chat();
    await until('squad_http_requests_total{route="chat"}', (r) => r.length === 1, 'the first chat call is scraped');
    const [first] = await until('sum(squad_limiter_wait_seconds_count)', (r) => r.length === 1, 'its admission is scraped');
    for (let i = 0; i < 3; i++) await chat();
    // Each call is admitted by a limiter (a new provider or class starts a new series: the sum counts them all).
    await until('sum(squad_limiter_wait_seconds_count)', (r) => r.length === 1 && Number(r[0].value[1]) >= Number(first.value[1]) + 3, 'three more admissions');
    await until('sum(increase(squad_http_requests_total{route="chat",status="200"}[1m]))', (r) => r.length === 1 && Number(r[0].value[1]) >= 2, 'the chat calls are counted');
  });

  it(`loads the ${ruleCount} alert rules and evaluates each without error; none fires on a healthy squad`, async () => {
    const deadline = Date.now() + 30000;
    let rules;
    for (;;) {
      const body = await (await fetch(`${base}/api/v1/rules?type=alert`)).json();
      rules = body.data.groups.flatMap((g) => g.rules);
      if (rules.length === ruleCount && rules.every((r) => r.lastEvaluation && !r.lastEvaluation.startsWith('0001'))) break;
      assert.ok(Date.now() < deadline, `rules not all evaluated: ${JSON.stringify(rules)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const r of rules) {
      assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);
      assert.equal(r.state, 'inactive', `${r.name} is ${r.state}`);
    }
  });
});
