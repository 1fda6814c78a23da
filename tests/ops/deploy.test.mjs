// The deployment files of deploy/, checked by tools and cross-checked against each other and the squad binary:
// the Dockerfile (dockerfile-utils' linter, its package lists against deploy/setup.sh and the binary's shared
// libraries), the Kubernetes manifests (kubernetes-models' schemas, then selectors, ports, probes, names), the
// Compose file (ports, mounts, secrets, and the configs of the services it mounts), and deploy/squad.yaml run by
// the real squad serve.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { parse } from 'yaml';
import { deployDir, drainSeconds, need, needSquad, read, readYaml, readYamlDocs, run, sourceDir, squadBin, start } from './lib.mjs';

// The Dockerfile as instructions: continuation lines joined, comments dropped.
function instructions(text) {
  const out = [];
  let cur = '';
  for (const line of text.split('\n')) {
    if (!cur && (/^\s*#/.test(line) || !line.trim())) continue;
    if (/^\s*#/.test(line)) continue; // a comment inside a continued instruction
    cur += (cur ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (!line.endsWith('\\')) {
      const [keyword, ...rest] = cur.split(/\s+/);
      out.push({ keyword: keyword.toUpperCase(), args: rest.join(' ') });
      cur = '';
    }
  }
  return out;
}

// The packages an `apt-get install` line of a RUN instruction names.
function aptPackages(run) {
  const m = /apt-get install ([^&;]+)/.exec(run);
  return m ? m[1].split(/\s+/).filter((w) => w && !w.startsWith('-')) : [];
}

describe('deploy/Dockerfile', () => {
  const text = read('deploy/Dockerfile');
  const ins = instructions(text);
  const stages = [];
  for (const i of ins) {
    if (i.keyword === 'FROM') stages.push({ from: i.args, ins: [] });
    else stages.at(-1)?.ins.push(i);
  }
  const final = stages.at(-1);

  it('passes dockerfile-utils with no diagnostic', () => {
    const problems = lintDockerfile(text, {});
    assert.deepEqual(problems.map((p) => `line ${p.range.start.line + 1}: ${p.message}`), []);
    // The linter itself is alive: a broken file gets diagnostics.
    assert.ok(lintDockerfile('FROM debian:12\nRUNN true\nEXPOSE http\n', {}).length >= 2);
  });

  it('builds on Debian 12 in two stages; the final one runs squad serve as a non-root user with a health check', () => {
    assert.ok(stages.length >= 2, 'a build stage and a final stage');
    for (const s of stages) assert.match(s.from, /^debian:12(-slim)?( AS \w+)?$/i, s.from);
    const last = (k) => final.ins.filter((i) => i.keyword === k).at(-1);
    assert.ok(last('USER'), 'the final stage sets USER');
    assert.doesNotMatch(last('USER').args, /^(root|0)(:|$)/);
    assert.match(last('HEALTHCHECK').args, /\/healthz/);
    assert.match(last('CMD').args, /"serve"/);
    assert.match(last('ENTRYPOINT').args, /squad/);
    assert.ok(final.ins.some((i) => i.keyword === 'VOLUME' && i.args.includes('/etc/squad')), 'config from a volume');
    assert.ok(!final.ins.some((i) => /apt-get install[^&]*(-dev\b|\bg\+\+|\bcmake)/.test(i.args)), 'no compiler or -dev package in the final image');
  });

  it('installs in its build stage what deploy/setup.sh installs to build', () => {
    const m = /^packages=\(([^)]*)\)/m.exec(read('deploy/setup.sh'));
    assert.ok(m, 'deploy/setup.sh has a packages=( ... ) list');
    const setup = m[1].replace(/#.*$/gm, '').split(/\s+/).filter(Boolean).filter((p) => p !== 'ccache');
    const build = stages[0].ins.filter((i) => i.keyword === 'RUN').flatMap((i) => aptPackages(i.args));
    assert.deepEqual([...build].sort(), [...setup].sort());
  });

  it("installs in its final stage the packages of every shared library the squad binary links", () => {
    needSquad();
    const listed = final.ins.filter((i) => i.keyword === 'RUN').flatMap((i) => aptPackages(i.args));
    // apt installs what a listed package depends on: the closure, as this machine's dpkg knows it.
    const runtime = new Set();
    const todo = [...listed];
    while (todo.length) {
      const pkg = todo.pop();
      if (runtime.has(pkg)) continue;
      runtime.add(pkg);
      const dep = run('dpkg-query', ['-W', '-f=${Depends},${Pre-Depends}', pkg]);
      if (dep.code !== 0) continue;
      for (const alt of dep.stdout.split(',')) {
        const name = alt.split('|')[0].trim().split(/[\s:(]/)[0];
        if (name) todo.push(name);
      }
    }
    // In every debian:12-slim image already (Essential, or needed by apt itself).
    const base = new Set(['libc6', 'libstdc++6', 'libgcc-s1']);
    const libs = run('ldd', [squadBin]).stdout.split('\n').map((l) => /=>\s*(\S+)/.exec(l)?.[1]).filter(Boolean);
    assert.ok(libs.length > 3, 'ldd lists the libraries');
    const missing = [];
    for (const lib of libs) {
      const owner = run('dpkg', ['-S', lib]);
      const real = owner.code === 0 ? owner : run('dpkg', ['-S', lib.replace(/^\/lib\//, '/usr/lib/')]);
      assert.equal(real.code, 0, `no Debian package owns ${lib}`);
      const pkg = real.stdout.split(':')[0];
      if (!base.has(pkg) && !runtime.has(pkg)) missing.push(`${lib} (${pkg})`);
    }
    assert.deepEqual(missing, [], 'libraries whose package the final stage does not install');
  });

  // The build stage's sources, copied as its COPY lines do, configure with its cmake line and have its target:
  // a source directory the build needs but the stage does not copy fails here (compiling is left to the image).
  it('configures the build stage from exactly what it copies', () => {
    need('cmake', 'cmake');
    const dir = mkdtempSync(join(tmpdir(), 'squad-ops-image-src-'));
    try {
      const build = stages[0].ins;
      for (const i of build.filter((i) => i.keyword === 'COPY')) {
        const [src, dst] = i.args.split(/\s+/);
        const r = run('cp', ['-r', join(sourceDir, src), join(dir, dst === './' ? src : dst)]);
        assert.equal(r.code, 0, r.stderr);
      }
      const cmd = build.filter((i) => i.keyword === 'RUN').map((i) => i.args).find((a) => a.startsWith('cmake -S'));
      assert.ok(cmd, 'a RUN cmake -S line');
      const configure = cmd.split('&&')[0].trim().split(/\s+/);
      const r = run(configure[0], configure.slice(1), { cwd: dir });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const target = /--target (\S+)/.exec(cmd)[1];
      const help = run('cmake', ['--build', 'build', '--target', 'help'], { cwd: dir });
      assert.match(help.stdout, new RegExp(`^\\.\\.\\. ${target}$`, 'm'), `the build has a ${target} target`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('copies only paths that exist', () => {
    for (const i of ins.filter((i) => i.keyword === 'COPY' && !i.args.includes('--from'))) {
      const srcs = i.args.split(/\s+/).slice(0, -1);
      for (const s of srcs) assert.ok(existsSync(join(sourceDir, s)), `COPY ${s}: no such path in the repository`);
    }
  });
});

// kubernetes-models classes by apiVersion and kind.
async function modelOf(apiVersion, kind) {
  const m = await import(`kubernetes-models/${apiVersion}`); // v1, apps/v1, policy/v1
  assert.ok(m[kind], `kubernetes-models has no ${apiVersion} ${kind}`);
  return m[kind];
}

describe('deploy/k8s', () => {
  const files = [
    ...readdirSync(join(deployDir, 'k8s')).filter((f) => f.endsWith('.yaml')).map((f) => `deploy/k8s/${f}`),
    ...readdirSync(join(deployDir, 'k8s/examples')).map((f) => `deploy/k8s/examples/${f}`),
  ];
  const docs = files.flatMap((f) => readYamlDocs(f).map((doc) => ({ file: f, doc })));
  const all = (kind) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
  const one = (kind) => {
    assert.equal(all(kind).length, 1, `one ${kind}`);
    return all(kind)[0];
  };

  it("validates every object against Kubernetes' schemas", async () => {
    assert.ok(docs.length >= 6);
    for (const { file, doc } of docs) {
      const Model = await modelOf(doc.apiVersion, doc.kind);
      assert.doesNotThrow(() => new Model(doc).validate(), `${file}: ${doc.kind} ${doc.metadata?.name}`);
    }
    // The schemas are alive: a probe on a port object is refused.
    const Deployment = await modelOf('apps/v1', 'Deployment');
    const bad = structuredClone(one('Deployment'));
    bad.spec.template.spec.containers[0].livenessProbe.httpGet.port = { name: 'http' };
    assert.throws(() => new Deployment(bad).validate());
  });

  it('has a Deployment, a Service, a headless peers Service, a ConfigMap, a Secret and a PodDisruptionBudget', () => {
    const kinds = new Set(docs.map((d) => d.doc.kind));
    for (const k of ['Deployment', 'Service', 'ConfigMap', 'Secret', 'PodDisruptionBudget']) assert.ok(kinds.has(k), k);
    const services = all('Service');
    assert.equal(services.filter((s) => s.spec.clusterIP === 'None').length, 1, 'one headless Service');
    assert.ok(services.some((s) => s.spec.clusterIP !== 'None'), 'one Service with a cluster IP');
  });

  it('wires probes, ports, selectors, the ConfigMap and the Secret to each other', () => {
    const dep = one('Deployment');
    const pod = dep.spec.template;
    const c = pod.spec.containers.find((c) => c.name === 'squad');
    assert.ok(c, 'a container named squad');
    const ports = new Map(c.ports.map((p) => [p.name, p.containerPort]));
    const listen = Number(readYaml('deploy/squad.yaml').server.listen.split(':').pop());
    assert.equal(ports.get('http'), listen, 'containerPort http is the port squad.yaml listens on');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    for (const probe of [c.readinessProbe, c.livenessProbe]) assert.ok(ports.has(probe.httpGet.port), `probe port ${probe.httpGet.port}`);
    const matches = (sel) => Object.entries(sel).every(([k, v]) => pod.metadata.labels[k] === v);
    assert.ok(matches(dep.spec.selector.matchLabels), 'the Deployment selects its pods');
    for (const s of all('Service')) {
      assert.ok(matches(s.spec.selector), `Service ${s.metadata.name} selects the pods`);
      for (const p of s.spec.ports) assert.ok(ports.has(p.targetPort), `Service ${s.metadata.name} targets a named port`);
    }
    assert.ok(matches(one('PodDisruptionBudget').spec.selector.matchLabels), 'the PodDisruptionBudget covers the pods');
    assert.ok(one('PodDisruptionBudget').spec.minAvailable < dep.spec.replicas, 'a pod can still be evicted');
    const cm = one('ConfigMap');
    const vol = pod.spec.volumes.find((v) => v.configMap);
    assert.equal(vol.configMap.name, cm.metadata.name);
    const mount = c.volumeMounts.find((m) => m.name === vol.name);
    assert.ok(c.args.includes(posix.join(mount.mountPath, 'squad.yaml')), 'squad serve reads the mounted squad.yaml');
    assert.deepEqual(parse(cm.data['squad.yaml']), readYaml('deploy/squad.yaml'), 'the ConfigMap holds deploy/squad.yaml');
    assert.equal(c.envFrom.find((e) => e.secretRef).secretRef.name, one('Secret').metadata.name);
    assert.ok(pod.spec.terminationGracePeriodSeconds > drainSeconds(), 'the grace period outlasts the drain');
    assert.equal(pod.spec.securityContext.runAsNonRoot, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  });

  it('commits no secret value', () => {
    const secret = one('Secret');
    const values = { ...(secret.data ?? {}), ...(secret.stringData ?? {}) };
    assert.ok(Object.keys(values).length > 0);
    for (const [k, v] of Object.entries(values)) assert.equal(v, '', `${k} has a value in the repository`);
    // Every ${VAR} squad.yaml expands is a key of the Secret.
    const vars = [...read('deploy/squad.yaml').replace(/#.*$/gm, '').matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]);
    for (const v of vars) assert.ok(v in values, `${v} is not in the Secret`);
  });
});

describe('deploy/compose.yaml', () => {
  const compose = readYaml('deploy/compose.yaml');
  const services = compose.services;
  const rel = (p) => join(deployDir, p);

  it('has Squad, PostgreSQL, Prometheus, Grafana and Alertmanager', () => {
    assert.deepEqual(Object.keys(services).sort(), ['alertmanager', 'grafana', 'postgres', 'prometheus', 'squad']);
    assert.ok(existsSync(rel(posix.join(services.squad.build.context, services.squad.build.dockerfile))), 'the Dockerfile it builds');
  });

  it('mounts files and directories that exist, and declares its named volumes and secrets', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const [src] = v.split(':');
        if (src.startsWith('.')) assert.ok(existsSync(rel(src)), `${name}: ${src} does not exist`);
        else assert.ok(src in (compose.volumes ?? {}), `${name}: volume ${src} is not declared`);
      }
      for (const sec of s.secrets ?? []) assert.ok(sec in compose.secrets, `${name}: secret ${sec} is not declared`);
    }
  });

  it('publishes distinct host ports on loopback, and squad on the port its config listens on', () => {
    const seen = new Set();
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) {
        const [host, hostPort, containerPort] = p.split(':');
        assert.equal(host, '127.0.0.1', `${name}: ${p} is not bound to loopback`);
        assert.ok(!seen.has(hostPort), `host port ${hostPort} twice`);
        seen.add(hostPort);
        if (name === 'squad') assert.equal(containerPort, readYaml('deploy/squad.yaml').server.listen.split(':').pop());
      }
    }
    assert.ok(services.squad.stop_grace_period.replace(/s$/, '') > drainSeconds(), 'stop_grace_period outlasts the drain');
  });

  it('points Prometheus, Alertmanager and Grafana at each other and at the mounted secrets', () => {
    const mountOf = (svc, src) => services[svc].volumes.map((v) => v.split(':')).find(([s]) => s === src)?.[1];
    const secretPath = (svc, p) => {
      const m = /^\/run\/secrets\/(\w+)$/.exec(p);
      assert.ok(m && services[svc].secrets.includes(m[1]), `${svc}: ${p} is not one of its secrets`);
    };
    const prom = readYaml('deploy/prometheus/prometheus.yml');
    assert.equal(mountOf('prometheus', './prometheus/prometheus.yml'), '/etc/prometheus/prometheus.yml');
    assert.ok(services.prometheus.command.includes(`--config.file=/etc/prometheus/prometheus.yml`));
    const job = prom.scrape_configs.find((j) => j.job_name === 'squad');
    assert.deepEqual(job.static_configs[0].targets, [`squad:${readYaml('deploy/squad.yaml').server.listen.split(':').pop()}`]);
    secretPath('prometheus', job.authorization.credentials_file);
    assert.equal(posix.dirname(prom.rule_files[0]), mountOf('prometheus', './prometheus/rules'));
    assert.deepEqual(prom.alerting.alertmanagers[0].static_configs[0].targets, ['alertmanager:9093']);

    const am = readYaml('deploy/alertmanager/alertmanager.yml');
    assert.ok(services.alertmanager.command.includes(`--config.file=${mountOf('alertmanager', './alertmanager/alertmanager.yml')}`));
    secretPath('alertmanager', am.global.slack_api_url_file);
    for (const r of am.receivers) for (const pd of r.pagerduty_configs ?? []) secretPath('alertmanager', pd.routing_key_file);

    const provisioning = mountOf('grafana', './grafana/provisioning');
    assert.equal(provisioning, '/etc/grafana/provisioning');
    const dsrc = readYaml('deploy/grafana/provisioning/datasources/prometheus.yaml').datasources[0];
    assert.equal(dsrc.url, 'http://prometheus:9090');
    const provider = readYaml('deploy/grafana/provisioning/dashboards/squad.yaml').providers[0];
    assert.equal(provider.options.path, mountOf('grafana', './grafana/dashboards'));
    secretPath('grafana', services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD__FILE);
    secretPath('postgres', services.postgres.environment.POSTGRES_PASSWORD_FILE);
  });

  it('gets every secret file and env file it names from deploy/compose-secrets.sh', () => {
    const dir = mkdtempSync(join(tmpdir(), 'squad-ops-secrets-'));
    try {
      const out = run(join(deployDir, 'compose-secrets.sh'), [join(dir, 'secrets')]);
      assert.equal(out.code, 0, out.stderr);
      const made = (p) => join(dir, 'secrets', posix.relative('secrets', posix.normalize(p)));
      for (const [name, s] of Object.entries(compose.secrets)) {
        assert.ok(s.file.startsWith('./secrets/'), `${name} is a file under secrets/`);
        assert.ok(existsSync(made(s.file.slice(2))), `compose-secrets.sh makes ${s.file}`);
      }
      for (const f of services.squad.env_file) assert.ok(existsSync(made(f)), `compose-secrets.sh makes ${f}`);
      const env = readFileSync(made(services.squad.env_file[0]), 'utf8');
      const vars = [...read('deploy/squad.yaml').replace(/#.*$/gm, '').matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]);
      for (const v of vars) assert.match(env, new RegExp(`^${v}=[0-9a-f]{64}$`, 'm'), `squad.env sets ${v}`);
      assert.equal(statSync(join(dir, 'secrets')).mode & 0o077, 0, 'the secrets directory is private');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.match(read('.gitignore'), /^\/deploy\/secrets\/$/m, 'the secrets are never committed');
  });
});

describe('deploy/grafana', () => {
  const dash = JSON.parse(read('deploy/grafana/dashboards/squad.json'));
  const source = readYaml('deploy/grafana/provisioning/datasources/prometheus.yaml').datasources[0];

  it('lays the dashboard out on the 24-column grid with unique ids and no overlapping panels', () => {
    const ids = dash.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
    const cells = new Map();
    for (const p of dash.panels) {
      const { x, y, w, h } = p.gridPos;
      assert.ok(x >= 0 && w > 0 && x + w <= 24, `${p.title}: x ${x} w ${w}`);
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          const k = `${i},${j}`;
          assert.ok(!cells.has(k), `${p.title} overlaps ${cells.get(k)}`);
          cells.set(k, p.title);
        }
      const refs = (p.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refs).size, refs.length, `${p.title}: unique refIds`);
    }
  });

  it('reads every panel from the provisioned Prometheus data source', () => {
    const variable = dash.templating.list.find((v) => v.type === 'datasource');
    assert.equal(variable.query, source.type);
    assert.equal(variable.current.value, source.uid, 'the default data source is the provisioned one');
    for (const p of dash.panels.filter((p) => p.type !== 'row')) {
      assert.equal(p.datasource.uid, `\${${variable.name}}`, p.title);
      assert.ok(p.targets.length > 0 && p.targets.every((t) => t.expr), `${p.title}: queries`);
    }
  });
});

describe('deploy/squad.yaml', () => {
  // The container's config, with the image's data paths pointed at this checkout: squad serve must start on it,
  // ask for the key on /metrics, answer the probes, survive a SIGHUP and drain on SIGTERM.
  it('runs: keys guard /metrics, probes answer, SIGHUP checks the config, SIGTERM drains', async () => {
    needSquad();
    const sha = (s) => run('sha256sum', [], { input: s }).stdout.split(' ')[0];
    const metricsKey = 'ops-test-metrics-key-0123456789';
    const dir = mkdtempSync(join(tmpdir(), 'squad-ops-config-'));
    const config = join(dir, 'squad.yaml');
    writeFileSync(config, read('deploy/squad.yaml')
      .replace('/usr/share/squad/personas', join(sourceDir, 'personas'))
      .replace('/usr/share/squad/workflows', join(sourceDir, 'config/workflows')));
    const env = { ...process.env, SQUAD_APP_KEY_SHA256: sha('ops-test-app-key-0123456789'), SQUAD_METRICS_KEY_SHA256: sha(metricsKey) };
    const squad = start(squadBin, ['serve', '--config', config, '--listen', '127.0.0.1:0'], { env, cwd: dir });
    try {
      const port = await waitFor(() => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(squad.output())?.[1], squad);
      const url = (p) => `http://127.0.0.1:${port}${p}`;
      assert.match(squad.output(), /\(auth: keys, /);
      assert.equal((await fetch(url('/metrics'))).status, 401, '/metrics needs a key');
      // The limiters report their gauges once they have started, just after the server listens: poll.
      const deadline = Date.now() + 15000;
      for (;;) {
        const ok = await fetch(url('/metrics'), { headers: { authorization: `Bearer ${metricsKey}` } });
        assert.equal(ok.status, 200);
        const text = await ok.text();
        if (/^squad_limiter_window_cap\{provider="sim-steady"\} 10$/m.test(text)) break;
        assert.ok(Date.now() < deadline, `no window cap of sim-steady in /metrics within 15 s:\n${text}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal((await fetch(url('/healthz'))).status, 200);
      assert.equal((await fetch(url('/readyz'))).status, 200);
      // SIGHUP (ExecReload): the process lives on and says whether the file is valid.
      squad.child.kill('SIGHUP');
      await waitFor(() => /SIGHUP: .* is valid/.test(squad.output()), squad);
      writeFileSync(config, 'server: {listen: nowhere}\n');
      squad.child.kill('SIGHUP');
      await waitFor(() => /SIGHUP: .*problem\(s\); still serving/.test(squad.output()), squad);
      assert.equal((await fetch(url('/healthz'))).status, 200, 'still serving after two SIGHUPs');
      assert.equal(await squad.stop(), 0, `a clean drain on SIGTERM:\n${squad.output()}`);
    } finally {
      squad.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Polls `f` until it returns something truthy; fails when `proc` exits first or after 15 s.
async function waitFor(f, proc, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (proc.child.exitCode !== null || Date.now() > deadline) throw new Error(`gave up waiting:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// The systemd unit, verified by systemd itself, and its hardening scored offline.
describe('deploy/systemd/squad.service', () => {
  const unit = read('deploy/systemd/squad.service');
  const setting = (k) => [...unit.matchAll(new RegExp(`^${k}=(.*)$`, 'gm'))].map((m) => m[1]);

  it('is hardened, reloads with SIGHUP and stops after the drain', () => {
    assert.deepEqual(setting('DynamicUser'), ['yes']);
    assert.deepEqual(setting('ProtectSystem'), ['strict']);
    assert.deepEqual(setting('NoNewPrivileges'), ['yes']);
    assert.deepEqual(setting('StateDirectory'), ['squad']);
    assert.match(setting('ExecReload')[0], /kill -HUP \$MAINPID/);
    assert.deepEqual(setting('KillSignal'), ['SIGTERM']);
    const stop = /^(\d+)s$/.exec(setting('TimeoutStopSec')[0]);
    assert.ok(stop && Number(stop[1]) > drainSeconds(), 'TimeoutStopSec outlasts server.drain_timeout');
    assert.match(setting('ExecStart')[0], /squad serve --config \/etc\/squad\/squad.yaml$/);
    assert.equal(unit.match(/\$\{?\w*(KEY|TOKEN|SECRET)\w*\}?/g), null, 'no secret in the unit');
  });

  // systemd-analyze wants ExecStart's binary to exist: the unit is verified with the built binary's path in
  // place of /usr/local/bin/squad (nothing else changes).
  const withBinary = () => {
    const dir = mkdtempSync(join(tmpdir(), 'squad-ops-unit-'));
    writeFileSync(join(dir, 'squad.service'), unit.replaceAll('/usr/local/bin/squad', squadBin));
    return dir;
  };

  it('passes systemd-analyze verify with no warning', () => {
    need('systemd-analyze', 'systemd');
    needSquad();
    const dir = withBinary();
    try {
      const r = run('systemd-analyze', ['verify', join(dir, 'squad.service')]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((r.stdout + r.stderr).trim(), '', 'no warning');
      // The check is alive: a misspelt key is reported.
      writeFileSync(join(dir, 'squad.service'), unit.replaceAll('/usr/local/bin/squad', squadBin).replace('PrivateTmp=', 'PrivateTemp='));
      const bad = run('systemd-analyze', ['verify', join(dir, 'squad.service')]);
      assert.match(bad.stdout + bad.stderr, /Unknown key name 'PrivateTemp'|Unknown key 'PrivateTemp'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("scores at most 2.0 on systemd-analyze security's exposure scale", () => {
    need('systemd-analyze', 'systemd');
    const dir = withBinary();
    try {
      const r = run('systemd-analyze', ['security', '--offline=yes', '--threshold=20', '--no-pager', join(dir, 'squad.service')]);
      const score = /Overall exposure level for squad\.service: ([\d.]+)/.exec(r.stdout)?.[1];
      assert.ok(score, r.stdout + r.stderr);
      assert.ok(Number(score) <= 2.0, `exposure ${score}`);
      assert.equal(r.code, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
