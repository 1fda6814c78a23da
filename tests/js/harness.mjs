// The real binaries as child processes for the JS end-to-end tests (the counterpart of
// tests/integration/mock_process.hpp and serve_process.hpp):
//   startMock(yaml)      squad-mock-provider on a config in a private temp dir; its ports come from the ports file
//   startSquad(opts)     `squad serve --listen 127.0.0.1:0` on a config; its port comes from the "listening on" line
//   startServed()        both, wired like the C++ serve test (providers main and spare, persona analyst, aliases)
//   startSim()           squad serve on config/squad.yaml (simulated providers), cwd = the source dir
// stop() sends SIGTERM and resolves to the exit code (-1 when it had to be killed, or died of a signal), so a
// test can assert a clean drain. Paths: SQUAD_BIN, SQUAD_MOCK_BIN, SQUAD_SOURCE_DIR (set by CTest); without them
// the Debug build of this checkout.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));
export const sourceDir = process.env.SQUAD_SOURCE_DIR || resolve(here, '../..');
export const squadBin = process.env.SQUAD_BIN || join(sourceDir, 'build/debug/runtime/app/squad');
export const mockBin = process.env.SQUAD_MOCK_BIN || join(sourceDir, 'build/debug/runtime/mock/squad-mock-provider');

// Children still running when the test process exits (a failed assertion, a timeout) are killed.
const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

// A child process with its output kept in memory; `exited` resolves to {code, signal}.
function launch(bin, args, { cwd, env } = {}) {
  if (!existsSync(bin)) throw new Error(`no binary at ${bin} (set SQUAD_BIN / SQUAD_MOCK_BIN)`);
  const child = spawn(bin, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d) => (out.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (out.stderr += d));
  live.add(child);
  const exited = new Promise((res) => {
    child.on('error', (err) => {
      out.stderr += `\n(spawn error: ${err.message})`;
      live.delete(child);
      res({ code: null, signal: null, error: err });
    });
    child.on('exit', (code, signal) => {
      live.delete(child);
      res({ code, signal });
    });
  });
  let status; // set once exited
  exited.then((s) => (status = s));
  return { child, out, exited, status: () => status };
}

// SIGTERM, then the exit code; SIGKILL after `graceMs` (the result is then -1, as for any death by signal).
async function terminate(p, graceMs) {
  if (!p.status()) {
    p.child.kill('SIGTERM');
    const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
    await p.exited;
    clearTimeout(timer);
  }
  const s = p.status();
  return s.code === null ? -1 : s.code;
}

function privateDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** squad-mock-provider on `yaml`; resolves once every upstream listens (the ports file appeared). */
export async function startMock(yaml, { timeoutMs = 10000 } = {}) {
  const dir = privateDir('squad-js-mock-');
  writeFileSync(join(dir, 'mock.yaml'), yaml);
  const portsFile = join(dir, 'ports.json');
  const p = launch(mockBin, ['--config', join(dir, 'mock.yaml'), '--ports-file', portsFile]);
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(portsFile)) { // renamed into place once complete
    if (p.status()) {
      cleanup();
      throw new Error(`the mock exited at start (${JSON.stringify(p.status())}): ${p.out.stderr}`);
    }
    if (Date.now() > deadline) {
      await terminate(p, 5000);
      cleanup();
      throw new Error(`the mock did not write its ports file within ${timeoutMs} ms: ${p.out.stderr}`);
    }
    await sleep(5);
  }
  let ports;
  try {
    ports = JSON.parse(readFileSync(portsFile, 'utf8'));
  } catch (err) {
    await terminate(p, 5000);
    cleanup();
    throw err;
  }
  return {
    ports,
    port(name) {
      if (!(name in ports)) throw new Error(`the mock has no upstream ${name}: ${JSON.stringify(ports)}`);
      return ports[name];
    },
    stdout: () => p.out.stdout,
    stderr: () => p.out.stderr,
    async stop(graceMs = 5000) {
      const code = await terminate(p, graceMs);
      cleanup();
      return code;
    },
  };
}

/**
 * `squad serve` on a config: either `yaml` (written to a private temp dir) or `configPath`. Resolves once it
 * prints its "listening on" line. `cwd` defaults to the source dir (relative personas_dir / workflows_dir);
 * `storage` (a --storage URL) to a private SQLite file.
 */
export async function startSquad({ yaml, configPath, cwd = sourceDir, env = {}, timeoutMs = 15000, storage } = {}) {
  const dir = privateDir('squad-js-serve-');
  // Each serve keeps its own store unless a test shares one between two processes (a restart).
  storage ??= `sqlite:${join(dir, 'squad.db')}`;
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  if (yaml !== undefined) {
    configPath = join(dir, 'squad.yaml');
    writeFileSync(configPath, yaml);
  }
  if (!configPath) throw new Error('startSquad needs yaml or configPath');
  const p = launch(squadBin, ['serve', '--config', configPath, '--listen', '127.0.0.1:0', '--storage', storage],
    { cwd, env });
  const listening = /listening on http:\/\/[^:\s]+:(\d+)/;
  const deadline = Date.now() + timeoutMs;
  let port;
  for (;;) {
    const m = listening.exec(p.out.stdout);
    if (m) {
      port = Number(m[1]);
      break;
    }
    if (p.status()) {
      cleanup();
      throw new Error(`squad serve exited at start (${JSON.stringify(p.status())}): ${p.out.stderr}`);
    }
    if (Date.now() > deadline) {
      await terminate(p, 5000);
      cleanup();
      throw new Error(`squad serve did not listen within ${timeoutMs} ms: ${p.out.stderr}`);
    }
    await sleep(5);
  }
  const base = `http://127.0.0.1:${port}`;
  return {
    port,
    base,
    baseURL: `${base}/v1`,
    wsURL: `ws://127.0.0.1:${port}/v1/ws`,
    url: (path) => base + path,
    stdout: () => p.out.stdout,
    stderr: () => p.out.stderr,
    /** SIGTERM (squad drains), then the exit code: 0 for a clean drain; -1 if killed after `graceMs`. */
    async stop(graceMs = 10000) {
      const code = await terminate(p, graceMs);
      cleanup();
      return code;
    },
  };
}

// The configs of tests/integration/serve_test.cpp: two OpenAI-style upstreams; "main" streams, "spare" does not.
export const mockYaml = readFileSync(join(sourceDir, 'tests/data/serve_mock.yaml'), 'utf8');

export function squadYaml(mock, server = '{listen: 127.0.0.1:0}') {
  const provider = (name, extra) =>
    `  ${name}:\n    kind: openai\n    base_url: http://127.0.0.1:${mock.port(name)}/v1\n` +
    '    limits: {requests: 1000, per: 1s, burst: 100, concurrency: 16}\n' +
    '    timeouts: {connect: 1s, first_byte: 3s, idle: 3s, total: 10s}\n' +
    extra +
    `    models:\n      m: {id: mock-${name}, tier: worker}\n`;
  return (
    `personas_dir: ${sourceDir}/personas\nworkflows_dir: ${sourceDir}/config/workflows\n` +
    `server: ${server}\n` +
    'providers:\n' +
    provider('main', '    stream: true\n') +
    provider('spare', '') +
    'personas:\n  analyst: {chain: [main/m, spare/m]}\n' +
    'aliases:\n  fast: main/m\n  helper: persona/analyst\n'
  );
}

/** The mock plus squad serve in front of it. stop() stops both and resolves to squad's exit code. */
export async function startServed() {
  const mock = await startMock(mockYaml);
  let squad;
  try {
    squad = await startSquad({ yaml: squadYaml(mock) });
  } catch (err) {
    await mock.stop();
    throw err;
  }
  return {
    mock,
    squad,
    async stop() {
      const code = await squad.stop();
      await mock.stop();
      return code;
    },
  };
}

/** squad serve on the default config (simulated providers: no mock, no keys), run from the source dir. */
export function startSim(opts = {}) {
  return startSquad({ configPath: join(sourceDir, 'config/squad.yaml'), cwd: sourceDir, ...opts });
}
