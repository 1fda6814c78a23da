// GET /metrics of `squad serve`, after real traffic (chat calls, a WebSocket session with an error and a run), checked by Prometheus's own linter: `promtool check metrics`
// (Debian package prometheus). promtool exits non-zero on a parse error and on any lint problem (counter names
// without _total, histogram/summary naming, missing HELP, ...); its complaints are printed with the test result.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { startServed } from './harness.mjs';

const promtool = process.env.PROMTOOL || 'promtool';

// Runs `promtool check metrics` with `text` on stdin: {code, output}.
function promtoolCheck(text) {
  return new Promise((resolve, reject) => {
    const p = spawn(promtool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (output += d));
    p.stderr.setEncoding('utf8').on('data', (d) => (output += d));
    p.on('error', (err) => reject(new Error(`cannot run ${promtool} (install the prometheus package): ${err.message}`)));
    p.on('close', (code) => resolve({ code, output }));
    p.stdin.on('error', () => {}); // promtool may exit before reading everything; its exit code says why
    p.stdin.end(text);
  });
}

describe('squad serve /metrics', () => {
  let served;

  before(async () => {
    served = await startServed();
  });

  after(async () => {
    if (!served) return;
    const code = await served.stop();
    assert.equal(code, 0, `squad serve should drain and exit 0 on SIGTERM; stderr:\n${served.squad.stderr()}`);
  });

  it('after chat calls, GET /metrics passes promtool check metrics', async (t) => {
    const client = new OpenAI({ baseURL: served.squad.baseURL, apiKey: 'unused', maxRetries: 0 });
    await client.chat.completions.create({
      model: 'persona/analyst',
      messages: [{ role: 'user', content: 'Say hello' }],
      max_tokens: 16,
    });
    const stream = await client.chat.completions.create({
      model: 'main/m',
      messages: [{ role: 'user', content: 'Say hello' }],
      max_tokens: 16,
      stream: true,
    });
    for await (const _ of stream); // drain
    await assert.rejects(client.chat.completions.create({ model: 'nope/none', messages: [{ role: 'user', content: 'x' }] }));

    // A WebSocket session (left open while /metrics is read): a bad message, then a one-step run to its end.
    const ws = new WebSocket(served.squad.wsURL);
    const seen = [];
    const ended = new Promise((resolve, reject) => {
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString());
        seen.push(m.type);
        if (m.type === 'session.ready') {
          ws.send('not json');
          ws.send(JSON.stringify({ type: 'run.start', task: 'Say hello', workflow: 'quick', ref: 'm' }));
        }
        if (m.type === 'run.completed' || m.type === 'run.failed') resolve(m);
      });
      ws.on('error', reject);
      ws.on('close', () => reject(new Error(`the socket closed early: ${seen}`)));
    });
    let timer;
    const end = await Promise.race([
      ended,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no run end within 30 s: ${seen}`)), 30000))),
    ]).finally(() => clearTimeout(timer));
    assert.equal(end.type, 'run.completed', JSON.stringify(end));
    assert.ok(seen.includes('error'), 'the bad message got an error');

    const res = await fetch(served.squad.url('/metrics'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/, 'the Prometheus text format');
    const text = await res.text();
    assert.match(text, /squad_http_requests_total\{[^}]*route="chat"[^}]*\} \d/, 'the chat calls were counted');
    assert.match(text, /^squad_ws_sessions 1$/m, 'the open WebSocket session is counted');
    assert.match(text, /^# TYPE squad_cache_hits_total counter$/m, 'cache totals are counters');
    assert.match(text, /^squad_cache_misses_total \d+$/m, 'the cache misses are read from the dispatcher');

    ws.removeAllListeners('close');
    ws.close();

    const { code, output } = await promtoolCheck(text);
    if (output.trim()) t.diagnostic(`promtool check metrics (exit ${code}):\n${output.trim()}`);
    assert.equal(code, 0, `promtool check metrics exited ${code}:\n${output}`);
  });
});
