// Shared helpers of the tests/ops checks: paths, YAML files, child processes and free ports.
import { spawn, spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { sourceDir, squadBin } from '../js/harness.mjs';

export { sourceDir, squadBin };
export const deployDir = join(sourceDir, 'deploy');
export const read = (rel) => readFileSync(join(sourceDir, rel), 'utf8');
export const readYaml = (rel) => parse(read(rel));
/** Every document of a multi-document YAML file, as plain objects; a YAML error throws. */
export function readYamlDocs(rel) {
  return parseAllDocuments(read(rel)).map((d) => {
    if (d.errors.length) throw new Error(`${rel}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS();
  });
}

/** True when `cmd` is on the PATH. */
export function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Fails (never skips) when `cmd` is missing: deploy/setup.sh deps installs every tool these checks use. */
export function need(cmd, pkg) {
  assert.ok(have(cmd), `${cmd} is not installed (Debian package ${pkg}; deploy/setup.sh deps installs it)`);
}

/** Fails when the squad binary under test is missing (CTest passes its build's; else set SQUAD_BIN). */
export function needSquad() {
  assert.ok(existsSync(squadBin), `no squad binary at ${squadBin} (set SQUAD_BIN)`);
}

/** Runs a command to its end: {code, stdout, stderr}. */
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A port that was free a moment ago (for servers that cannot listen on port 0 and report it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A long-running child; stop() sends SIGTERM and resolves to its exit code. */
export function start(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (output += d));
  const exited = new Promise((res) => child.on('exit', (code, signal) => res(code ?? -1)));
  process.on('exit', () => child.kill('SIGKILL'));
  return {
    child,
    output: () => output,
    exited,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** squad serve's server.drain_timeout in deploy/squad.yaml, in seconds. */
export function drainSeconds() {
  const t = readYaml('deploy/squad.yaml').server.drain_timeout;
  const m = /^(\d+)(ms|s|m)$/.exec(t);
  if (!m) throw new Error(`unexpected drain_timeout ${t}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60 }[m[2]];
}
