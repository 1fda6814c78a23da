// Every alert rule of deploy/prometheus/rules/squad.yml has unit tests in squad-rules.test.yml (run by
// `promtool test rules` as ops_rules_test): at least one case where it fires and one where it stays quiet, with
// labels that route it (severity: critical or warning, the receivers of deploy/alertmanager/alertmanager.yml).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { need, run, deployDir, readYaml } from './lib.mjs';
import { join } from 'node:path';

const rules = readYaml('deploy/prometheus/rules/squad.yml').groups.flatMap((g) => g.rules);
const cases = readYaml('tests/ops/squad-rules.test.yml').tests.flatMap((t) => t.alert_rule_test ?? []);

describe('alert rules', () => {
  it('each rule has a firing and a quiet unit test', () => {
    assert.ok(rules.length >= 7);
    for (const r of rules) {
      const mine = cases.filter((c) => c.alertname === r.alert);
      assert.ok(mine.some((c) => c.exp_alerts.length > 0), `${r.alert}: no test where it fires`);
      assert.ok(mine.some((c) => c.exp_alerts.length === 0), `${r.alert}: no test where it stays quiet`);
    }
    for (const c of cases) assert.ok(rules.some((r) => r.alert === c.alertname), `a test of no rule: ${c.alertname}`);
  });

  it('each rule has a severity Alertmanager routes, a summary and a description', () => {
    for (const r of rules) {
      assert.match(r.labels?.severity ?? '', /^(critical|warning)$/, r.alert);
      assert.ok(r.annotations?.summary && r.annotations?.description, r.alert);
    }
    need('amtool', 'prometheus-alertmanager');
    const config = `--config.file=${join(deployDir, 'alertmanager/alertmanager.yml')}`;
    const route = (...labels) => run('amtool', ['config', 'routes', 'test', config, ...labels]).stdout.trim();
    assert.equal(route('severity=critical', 'alertname=SquadBreakerStorm'), 'pagerduty,slack', 'critical pages and posts');
    assert.equal(route('severity=warning', 'alertname=SquadWindowNearLimit'), 'slack');
  });
});
