// Isolation and liveness of `squad serve`'s runs, on the default config (simulated providers):
// - every WebSocket message type sent twice, in every order of two types, on one connection, while /healthz is
//   probed: the server keeps answering both (a lock taken twice on the io thread once froze the whole process);
// - with API keys on, a run belongs to the key that started it: other keys get 404 from every runs route and
//   WebSocket message, do not see it listed, and cannot cancel or steer it; an admin key sees and steers all.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { sourceDir, startSim, startSquad } from './harness.mjs';

// A WebSocket client keeping every message, with a wait for one that matches.
class Session {
  static async open(url, headers = {}) {
    const s = new Session(new WebSocket(url, { headers }));
    await new Promise((resolve, reject) => {
      s.ws.once('open', resolve);
      s.ws.once('error', reject);
    });
    await s.waitFor((m) => m.type === 'session.ready', { what: 'session.ready' });
    return s;
  }
  constructor(ws) {
    this.ws = ws;
    this.log = [];
    this.waiters = new Set();
    this.closed = null;
    ws.on('message', (data) => {
      this.log.push(JSON.parse(data.toString('utf8')));
      for (const w of [...this.waiters]) w();
    });
    ws.on('close', (code) => {
      this.closed = { code };
      for (const w of [...this.waiters]) w();
    });
    ws.on('error', () => {});
  }
  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }
  waitFor(pred, { from = 0, timeoutMs = 5000, what = 'a message' } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.log.find((x, k) => k >= from && pred(x));
        if (m) return done(() => resolve(m));
        if (this.closed) done(() => reject(new Error(`socket closed waiting for ${what}: ${this.dump()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no ${what} within ${timeoutMs} ms: ${this.dump()}`))), timeoutMs);
      const done = (f) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        f();
      };
      this.waiters.add(check);
      check();
    });
  }
  dump() {
    return this.log.filter((m) => m.type !== 'step.delta').map((m) => JSON.stringify(m).slice(0, 200)).slice(-20).join('\n');
  }
  async close() {
    if (this.closed) return;
    const closed = new Promise((resolve) => this.ws.once('close', resolve));
    this.ws.close(1000);
    await closed;
  }
}

// A run that stays alive: its only step waits for a person's input for ten minutes.
const waitingRun = { task: 'Plan a team offsite', workflow: 'quick', feedback: { brief: 600000 } };

async function startRun(s, ref, extra = {}) {
  const from = s.log.length;
  s.send({ type: 'run.start', ref, ...waitingRun, ...extra });
  const m = await s.waitFor((x) => x.ref === ref && (x.type === 'run.accepted' || x.type === 'error'), { from, what: `run.accepted ${ref}` });
  assert.equal(m.type, 'run.accepted', JSON.stringify(m));
  return m.run_id;
}

// /healthz probed every 20 ms until stop(); resolves to the slowest answer in ms (a request not answered within
// 2 s counts as a failure).
function probeHealth(url) {
  let stopped = false;
  let worst = 0;
  const failures = [];
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
        await r.text();
        if (r.status !== 200) failures.push(`status ${r.status}`);
      } catch (err) {
        failures.push(err.message);
      }
      worst = Math.max(worst, performance.now() - t0);
      await new Promise((res) => setTimeout(res, 20));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { worst, failures };
    },
  };
}

async function cancelAll(squad, headers = {}) {
  const list = await (await fetch(squad.url('/v1/runs'), { headers })).json();
  for (const r of list.data)
    if (r.state !== 'completed' && r.state !== 'failed' && r.state !== 'cancelled')
      await fetch(squad.url(`/v1/runs/${r.id}`), { method: 'DELETE', headers });
}

describe('WebSocket: every message type twice, in every order', () => {
  let squad;
  before(async () => {
    squad = await startSim();
  });
  after(async () => {
    if (!squad) return;
    await cancelAll(squad);
    const code = await squad.stop();
    assert.equal(code, 0, `squad serve drains and exits 0 on SIGTERM; stderr:\n${squad.stderr()}`);
  });

  const types = ['run.start', 'run.subscribe', 'run.cancel', 'step.feedback', 'run.bogus'];
  const message = (type, runId, ref) => {
    if (type === 'run.start') return { type, ref, ...waitingRun };
    if (type === 'step.feedback') return { type, ref, run_id: runId, step_id: 'brief', text: 'looks good' };
    return { type, ref, run_id: runId };
  };

  it('the session answers each message and the server keeps answering /healthz', { timeout: 120000 }, async () => {
    const health = probeHealth(squad.url('/healthz'));
    try {
      for (const a of types)
        for (const b of types) {
          const s = await Session.open(squad.wsURL);
          try {
            const runId = await startRun(s, `seed-${a}-${b}`);
            const from = s.log.length;
            const refs = [];
            for (const [i, t] of [a, b, a, b].entries()) {
              const ref = `${a}|${b}|${i}`;
              refs.push(ref);
              s.send(message(t, runId, ref));
            }
            // A last message proves the session still reads and answers after the four.
            s.send({ type: 'run.bogus', ref: 'probe' });
            await s.waitFor((m) => m.ref === 'probe' && m.type === 'error', { from, what: `the probe's error after ${a}, ${b}, ${a}, ${b}` });
            // run.start and run.bogus always answer with a ref; run.subscribe twice answers the second with an error.
            for (const [i, t] of [a, b, a, b].entries())
              if (t === 'run.start' || t === 'run.bogus')
                assert.ok(s.log.some((m) => m.ref === refs[i]), `no answer to ${t} (${refs[i]}): ${s.dump()}`);
            // While the run is live and followed, a second run.subscribe is refused; a run.cancel or step.feedback
            // in the pair can end the run first (its one step), and following an ended run again is a replay.
            const ends = [a, b].some((t) => t === 'run.cancel' || t === 'step.feedback');
            if ((a === 'run.subscribe' || b === 'run.subscribe') && !ends) {
              const dup = s.log.filter((m) => m.type === 'error' && m.param === 'run_id' && /already follows/.test(m.message));
              assert.ok(dup.length >= 1, `subscribing to a followed run is refused: ${s.dump()}`);
            }
            const hz = await fetch(squad.url('/healthz'), { signal: AbortSignal.timeout(2000) });
            assert.equal(hz.status, 200);
          } finally {
            await s.close();
          }
          await cancelAll(squad);
        }
    } finally {
      const { worst, failures } = await health.stop();
      assert.deepEqual(failures, [], 'every /healthz probe answered 200 within 2 s');
      assert.ok(worst < 2000, `slowest /healthz ${worst} ms`);
    }
  });
});

describe('runs belong to the key that started them', () => {
  const keys = { alice: 'sk-alice-0123456789abcdef', bob: 'sk-bob-0123456789abcdef', ops: 'sk-ops-0123456789abcdef' };
  const sha = (k) => createHash('sha256').update(k).digest('hex');
  const auth = (name) => ({ authorization: `Bearer ${keys[name]}` });
  const json = { 'content-type': 'application/json' };
  let squad;

  before(async () => {
    const base = readFileSync(join(sourceDir, 'config/squad.yaml'), 'utf8');
    const server =
      'server:\n  listen: 127.0.0.1:0\n  auth: keys\n  keys:\n' +
      `    alice: {sha256: ${sha(keys.alice)}}\n` +
      `    bob: {sha256: ${sha(keys.bob)}}\n` +
      `    ops: {sha256: ${sha(keys.ops)}, admin: true}\n`;
    const yaml = base.replace(/^server:\n {2}listen: [^\n]*\n/m, server);
    assert.notEqual(yaml, base, 'config/squad.yaml still starts its server section with listen');
    squad = await startSquad({ yaml }); // cwd: the source dir, so personas/ and config/workflows/ resolve
  });
  after(async () => {
    if (!squad) return;
    await cancelAll(squad, auth('ops'));
    const code = await squad.stop();
    assert.equal(code, 0, `stderr:\n${squad.stderr()}`);
  });

  it('another key gets 404 everywhere; the owner and an admin key do not', { timeout: 60000 }, async () => {
    const post = await fetch(squad.url('/v1/runs'), { method: 'POST', headers: { ...json, ...auth('alice') }, body: JSON.stringify(waitingRun) });
    assert.equal(post.status, 202, await post.clone().text());
    const { id } = await post.json();

    // Bob: not listed, not readable, no events, no feedback, no cancel: all 404, the same as an unknown run.
    const bobList = await (await fetch(squad.url('/v1/runs'), { headers: auth('bob') })).json();
    assert.ok(!bobList.data.some((r) => r.id === id), 'bob does not see alice\'s run listed');
    for (const [method, path, body] of [
      ['GET', `/v1/runs/${id}`],
      ['GET', `/v1/runs/${id}/events`],
      ['POST', `/v1/runs/${id}/steps/brief/feedback`, { text: 'hijack' }],
      ['DELETE', `/v1/runs/${id}`],
    ]) {
      const r = await fetch(squad.url(path), { method, headers: { ...json, ...auth('bob') }, body: body && JSON.stringify(body) });
      assert.equal(r.status, 404, `${method} ${path} as bob: ${await r.clone().text()}`);
      const err = await r.json();
      assert.equal(err.error.code, 'not_found');
    }
    // Bob over WebSocket: the same.
    const s = await Session.open(squad.wsURL, auth('bob'));
    try {
      for (const [ref, msg] of [
        ['sub', { type: 'run.subscribe', run_id: id }],
        ['cancel', { type: 'run.cancel', run_id: id }],
        ['fb', { type: 'step.feedback', run_id: id, step_id: 'brief', text: 'hijack' }],
      ]) {
        s.send({ ...msg, ref });
        const e = await s.waitFor((m) => m.ref === ref, { what: `answer to ${ref}` });
        assert.equal(e.type, 'error', JSON.stringify(e));
        assert.match(e.message, /no run/);
      }
      assert.ok(!s.log.some((m) => m.run_id === id && m.type !== 'error'), 'bob received none of the run\'s events');
    } finally {
      await s.close();
    }

    // The run is untouched by bob: still running, no feedback recorded.
    const own = await fetch(squad.url(`/v1/runs/${id}`), { headers: auth('alice') });
    assert.equal(own.status, 200);
    const snap = await own.json();
    assert.ok(!['cancelled', 'failed'].includes(snap.state), JSON.stringify(snap));
    assert.ok(!JSON.stringify(snap).includes('hijack'));
    const aliceList = await (await fetch(squad.url('/v1/runs'), { headers: auth('alice') })).json();
    assert.ok(aliceList.data.some((r) => r.id === id));

    // A run bob starts is his alone; the admin key sees both and may cancel alice's.
    const bobPost = await fetch(squad.url('/v1/runs'), { method: 'POST', headers: { ...json, ...auth('bob') }, body: JSON.stringify(waitingRun) });
    const bobRun = (await bobPost.json()).id;
    const aliceSeesBob = await fetch(squad.url(`/v1/runs/${bobRun}`), { headers: auth('alice') });
    assert.equal(aliceSeesBob.status, 404);
    const opsList = await (await fetch(squad.url('/v1/runs'), { headers: auth('ops') })).json();
    assert.ok(opsList.data.some((r) => r.id === id) && opsList.data.some((r) => r.id === bobRun), JSON.stringify(opsList));
    const del = await fetch(squad.url(`/v1/runs/${id}`), { method: 'DELETE', headers: auth('ops') });
    assert.equal(del.status, 202, await del.clone().text());
  });
});
