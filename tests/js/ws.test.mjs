// Squad runs driven over the WebSocket API (GET /v1/ws) with the `ws` package, against `squad serve` on the default
// config (simulated providers: no keys, no mock). A full greenfield run, a run that waits for a person's feedback,
// a cancelled run, and bad messages that get an error without closing the connection; plus the REST runs API
// (POST /v1/runs, the SSE event stream, GET and DELETE /v1/runs/{id}).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { sourceDir, startSim } from './harness.mjs';

const RUN_TIMEOUT = 60000;

// The step ids of a workflow file, in file order (the "  - id: x" lines under steps:).
function workflowSteps(id) {
  const text = readFileSync(join(sourceDir, 'config/workflows', `${id}.yaml`), 'utf8');
  return [...text.matchAll(/^ {2}- id: *([A-Za-z0-9_-]+)/gm)].map((m) => m[1]);
}

// A WebSocket client that keeps every message it receives (parsed) and lets a test wait for one.
class Session {
  static async open(url) {
    const s = new Session(new WebSocket(url));
    await new Promise((resolve, reject) => {
      s.ws.once('open', resolve);
      s.ws.once('error', reject);
    });
    return s;
  }

  constructor(ws) {
    this.ws = ws;
    this.log = []; // every message, in arrival order
    this.waiters = new Set();
    this.closed = null; // {code, reason} once closed
    ws.on('message', (data, isBinary) => {
      assert.ok(!isBinary, 'the server sends text messages only');
      const msg = JSON.parse(data.toString('utf8'));
      this.log.push(msg);
      for (const w of [...this.waiters]) w.check();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of [...this.waiters]) w.check();
    });
    ws.on('error', () => {}); // a close follows
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /** The first message (at index >= from) matching pred; rejects after timeoutMs or when the socket closes. */
  waitFor(pred, { from = 0, timeoutMs = RUN_TIMEOUT, what = 'a message' } = {}) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          const i = this.log.findIndex((m, k) => k >= from && pred(m));
          if (i >= 0) {
            done();
            resolve(this.log[i]);
          } else if (this.closed) {
            done();
            reject(new Error(`the socket closed (${JSON.stringify(this.closed)}) while waiting for ${what}; got:\n${this.dump()}`));
          }
        },
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${timeoutMs} ms; got:\n${this.dump()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(w);
      };
      this.waiters.add(w);
      w.check();
    });
  }

  /** Messages of one run (by run_id), deltas left out unless asked. */
  ofRun(runId, { deltas = true } = {}) {
    return this.log.filter((m) => m.run_id === runId && (deltas || m.type !== 'step.delta'));
  }

  dump(max = 60) {
    const lines = this.log.filter((m) => m.type !== 'step.delta').map((m) => JSON.stringify(m).slice(0, 300));
    const deltas = this.log.length - lines.length;
    return `${lines.slice(-max).join('\n')}\n(${this.log.length} messages, ${deltas} step.delta)`;
  }

  async close() {
    if (this.closed) return;
    const closed = new Promise((resolve) => this.ws.once('close', resolve));
    this.ws.close(1000);
    await closed;
  }
}

const isEnd = (m) => m.type === 'run.completed' || m.type === 'run.failed';

// Starts a run over `s` and waits for run.accepted (matched by ref): the run id.
async function startRun(s, body, ref) {
  const from = s.log.length;
  s.send({ type: 'run.start', ref, ...body });
  const acc = await s.waitFor((m) => m.ref === ref && (m.type === 'run.accepted' || m.type === 'error'), {
    from,
    timeoutMs: 10000,
    what: `run.accepted for ref ${ref}`,
  });
  assert.equal(acc.type, 'run.accepted', `run.start was refused: ${JSON.stringify(acc)}`);
  assert.match(acc.run_id, /^run_/);
  return acc.run_id;
}

describe('squad runs over WebSocket', () => {
  let squad;

  before(async () => {
    squad = await startSim();
  });

  after(async () => {
    if (!squad) return;
    const code = await squad.stop();
    assert.equal(code, 0, `squad serve should drain and exit 0 on SIGTERM; stderr:\n${squad.stderr()}`);
  });

  it('a full greenfield run streams deltas and completes every step', { timeout: RUN_TIMEOUT + 10000 }, async () => {
    const steps = workflowSteps('greenfield');
    assert.ok(steps.length >= 2, `greenfield has steps: ${steps}`);
    const s = await Session.open(squad.wsURL);
    try {
      const ready = await s.waitFor((m) => m.type === 'session.ready', { timeoutMs: 5000, what: 'session.ready' });
      assert.equal(ready.protocol, 1);
      assert.equal(s.log[0].type, 'session.ready', 'session.ready is the first message');

      const ref = 'greenfield-1';
      const runId = await startRun(s, { task: 'Build a habit tracker for small teams', workflow: 'greenfield' }, ref);
      const end = await s.waitFor((m) => m.run_id === runId && isEnd(m), { what: `the end of ${runId}` });
      assert.equal(end.type, 'run.completed', `the run completed: ${JSON.stringify(end)}\n${s.dump()}`);
      await new Promise((r) => setTimeout(r, 300)); // nothing of the run may follow its end

      // run.accepted (with our ref) comes before any event of the run.
      const accIdx = s.log.findIndex((m) => m.type === 'run.accepted' && m.ref === ref);
      const firstEvIdx = s.log.findIndex((m) => m.run_id === runId && m.type !== 'run.accepted');
      assert.ok(accIdx >= 0 && accIdx < firstEvIdx, 'run.accepted came first for that ref');
      assert.equal(s.log[accIdx].run_id, runId);

      const evs = s.ofRun(runId).filter((m) => m.type !== 'run.accepted' && m.type !== 'lagged');
      assert.equal(evs[0].type, 'run.started', 'run.started opens the run');
      assert.equal(evs.at(-1).type, 'run.completed', 'run.completed is the last message of the run');
      for (const e of evs) {
        assert.equal(typeof e.seq, 'number', `seq on ${JSON.stringify(e)}`);
        assert.equal(typeof e.at_ms, 'number', `at_ms on ${JSON.stringify(e)}`);
        assert.equal(typeof e.data, 'object', `data on ${JSON.stringify(e)}`);
      }
      for (let i = 1; i < evs.length; i++)
        assert.ok(evs[i].seq > evs[i - 1].seq,
          `seq increases: ${evs[i - 1].type}#${evs[i - 1].seq} then ${evs[i].type}#${evs[i].seq}`);

      assert.ok(evs.some((e) => e.type === 'step.started'), 'at least one step.started');
      const deltas = evs.filter((e) => e.type === 'step.delta');
      assert.ok(deltas.length > 0, 'step.delta messages');
      for (const d of deltas) {
        assert.ok(steps.includes(d.step_id), `a delta names a step of the workflow: ${JSON.stringify(d)}`);
        assert.equal(typeof d.data.text, 'string');
      }

      for (const id of steps) {
        const done = evs.find((e) => e.step_id === id && (e.type === 'step.completed' || e.type === 'step.skipped'));
        assert.ok(done, `step ${id} completed or was reported skipped\n${s.dump()}`);
        if (done.type === 'step.completed') {
          assert.ok(typeof done.data.text === 'string' && done.data.text.length > 0, `step ${id} has text`);
          assert.ok(Array.isArray(done.data.outputs), `step ${id} has outputs`);
          const started = evs.findIndex((e) => e.step_id === id && e.type === 'step.started');
          assert.ok(started >= 0 && started < evs.indexOf(done), `step ${id} started before it completed`);
          // Where nothing was dropped or re-tried, each persona's streamed deltas are its part of the step's text.
          const clean = !s.ofRun(runId).some((e) => e.type === 'lagged' ||
            (e.step_id === id && (e.type === 'step.retry' || e.type === 'step.fallback')));
          const streamed = {};
          for (const d of deltas.filter((e) => e.step_id === id)) streamed[d.persona] = (streamed[d.persona] ?? '') + d.data.text;
          assert.ok(Object.keys(streamed).length > 0 || !clean, `step ${id} streamed deltas`);
          if (clean)
            for (const [persona, text] of Object.entries(streamed))
              assert.ok(done.data.text.includes(text), `step ${id}: ${persona}'s deltas (${text.length} chars) are in its text`);
        }
      }
      assert.equal(s.closed, null, 'the connection stays open after the run');
    } finally {
      await s.close();
    }
  });

  it('a step named in feedback waits for a person\'s input, which reaches the run\'s artifacts', { timeout: RUN_TIMEOUT + 10000 }, async () => {
    const steps = workflowSteps('greenfield');
    const first = steps[0];
    const second = steps[1];
    const feedbackText = `Focus on teams of 5 to 20 people; mobile first. (feedback ${Date.now()})`;
    const s = await Session.open(squad.wsURL);
    try {
      await s.waitFor((m) => m.type === 'session.ready', { timeoutMs: 5000, what: 'session.ready' });
      const runId = await startRun(s, { task: 'Build a habit tracker for small teams', feedback: [first] }, 'fb-1');

      const waiting = await s.waitFor((m) => m.run_id === runId && (m.type === 'step.awaiting_feedback' || isEnd(m)),
        { what: `step.awaiting_feedback of ${first}` });
      assert.equal(waiting.type, 'step.awaiting_feedback', `the run waits: ${JSON.stringify(waiting)}\n${s.dump()}`);
      assert.equal(waiting.step_id, first);
      assert.equal(typeof waiting.data.timeout_ms, 'number');
      assert.ok(waiting.data.timeout_ms > 0);
      const waitIdx = s.log.indexOf(waiting);
      assert.ok(s.log.findIndex((m) => m.run_id === runId && m.type === 'step.completed' && m.step_id === first) < waitIdx,
        `${first} completed before it waits`);

      // While it waits, its dependents do not start.
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(!s.ofRun(runId).some((m) => m.type === 'step.started' && m.step_id === second),
        `${second} must not start before the feedback on ${first}`);

      s.send({ type: 'step.feedback', run_id: runId, step_id: first, text: feedbackText, ref: 'fb-1-text' });
      const fb = await s.waitFor((m) => (m.run_id === runId && m.type === 'step.feedback') ||
        (m.type === 'error' && m.ref === 'fb-1-text'), { from: waitIdx, timeoutMs: 10000, what: 'step.feedback' });
      assert.equal(fb.type, 'step.feedback', `feedback accepted: ${JSON.stringify(fb)}`);
      assert.equal(fb.step_id, first);
      assert.equal(fb.data.text, feedbackText);

      const end = await s.waitFor((m) => m.run_id === runId && isEnd(m), { what: `the end of ${runId}` });
      assert.equal(end.type, 'run.completed', `the run completed: ${JSON.stringify(end)}\n${s.dump()}`);
      const fbIdx = s.log.indexOf(fb);
      const secondIdx = s.log.findIndex((m) => m.run_id === runId && m.type === 'step.started' && m.step_id === second);
      assert.ok(secondIdx > fbIdx, `${second} started after the feedback`);

      const res = await fetch(squad.url(`/v1/runs/${runId}`));
      assert.equal(res.status, 200);
      const run = await res.json();
      assert.equal(run.id, runId);
      assert.equal(run.state, 'completed', JSON.stringify(run));
      assert.equal(run.workflow, 'greenfield');
      assert.deepEqual(run.steps.map((x) => x.id), steps);
      for (const st of run.steps) assert.ok(['completed', 'skipped'].includes(st.status), `step ${st.id}: ${st.status}`);
      assert.equal(typeof run.artifacts[first], 'string', `an artifact for ${first}: ${JSON.stringify(run.artifacts)}`);
      assert.ok(run.artifacts[first].includes(feedbackText),
        `the ${first} artifact carries the feedback text:\n${run.artifacts[first]}`);
    } finally {
      await s.close();
    }
  });

  it('run.cancel ends a running run with run.failed (cancelled)', { timeout: RUN_TIMEOUT + 10000 }, async () => {
    const s = await Session.open(squad.wsURL);
    try {
      await s.waitFor((m) => m.type === 'session.ready', { timeoutMs: 5000, what: 'session.ready' });
      const runId = await startRun(s, { task: 'Build a habit tracker for small teams', workflow: 'greenfield' }, 'cancel-1');
      await s.waitFor((m) => m.run_id === runId && m.type === 'step.started', { what: 'step.started' });
      s.send({ type: 'run.cancel', run_id: runId, ref: 'cancel-1-x' });
      const end = await s.waitFor((m) => (m.run_id === runId && isEnd(m)) || (m.type === 'error' && m.ref === 'cancel-1-x'),
        { what: `the end of ${runId}` });
      assert.equal(end.type, 'run.failed', `cancel ends the run: ${JSON.stringify(end)}`);
      assert.equal(end.data.reason, 'cancelled', JSON.stringify(end));
      const run = await (await fetch(squad.url(`/v1/runs/${runId}`))).json();
      assert.equal(run.state, 'cancelled', JSON.stringify(run));
    } finally {
      await s.close();
    }
  });

  it('one connection follows two runs at once; each run\'s events come in order, apart', { timeout: RUN_TIMEOUT + 10000 }, async () => {
    const s = await Session.open(squad.wsURL);
    try {
      await s.waitFor((m) => m.type === 'session.ready', { timeoutMs: 5000, what: 'session.ready' });
      const [a, b] = await Promise.all([
        startRun(s, { task: 'Plan a team offsite', workflow: 'quick' }, 'two-a'),
        startRun(s, { task: 'Plan a product launch', workflow: 'quick' }, 'two-b'),
      ]);
      assert.notEqual(a, b);
      await Promise.all([a, b].map((id) => s.waitFor((m) => m.run_id === id && isEnd(m), { what: `the end of ${id}` })));
      for (const id of [a, b]) {
        const all = s.ofRun(id, { deltas: false });
        assert.equal(all[0].type, 'run.accepted', 'run.accepted comes before the run\'s events');
        const evs = all.slice(1);
        assert.equal(evs[0].type, 'run.started');
        assert.equal(evs.at(-1).type, 'run.completed', `run ${id}: ${JSON.stringify(evs.at(-1))}`);
        for (let i = 1; i < evs.length; i++) assert.ok(evs[i].seq > evs[i - 1].seq, `run ${id}: seq increases`);
      }
    } finally {
      await s.close();
    }
  });

  it('bad messages get an error and the connection stays open', { timeout: 20000 }, async () => {
    const s = await Session.open(squad.wsURL);
    try {
      await s.waitFor((m) => m.type === 'session.ready', { timeoutMs: 5000, what: 'session.ready' });

      let from = s.log.length;
      s.send('this is {not JSON');
      const e1 = await s.waitFor((m) => m.type === 'error', { from, timeoutMs: 5000, what: 'error for invalid JSON' });
      assert.equal(typeof e1.message, 'string');
      assert.ok(e1.message.length > 0);

      from = s.log.length;
      s.send({ type: 'run.explode', ref: 'bad-type' });
      const e2 = await s.waitFor((m) => m.type === 'error' && m.ref === 'bad-type', { from, timeoutMs: 5000, what: 'error for an unknown type' });
      assert.equal(e2.param, 'type');
      assert.match(e2.message, /run\.explode/);

      from = s.log.length;
      s.send({ type: 'run.start', ref: 'no-task' });
      const e3 = await s.waitFor((m) => m.type === 'error' && m.ref === 'no-task', { from, timeoutMs: 5000, what: 'error for run.start without task' });
      assert.equal(e3.param, 'task');

      from = s.log.length;
      s.send({ type: 'run.start', ref: 'blank-task', task: '   ' });
      const e4 = await s.waitFor((m) => m.type === 'error' && m.ref === 'blank-task', { from, timeoutMs: 5000, what: 'error for a blank task' });
      assert.equal(e4.param, 'task');

      from = s.log.length;
      s.send('{"type":"run.start","task":"deep","x":' + '['.repeat(40) + ']'.repeat(40) + '}');
      const deep = await s.waitFor((m) => m.type === 'error' && /nested deeper than 32/.test(m.message), { from, timeoutMs: 5000, what: 'error for a message nested 40 deep' });
      assert.ok(deep);
      assert.ok(!s.log.slice(from).some((m) => m.type === 'run.accepted'), 'the deep message started no run');

      from = s.log.length;
      s.send({ type: 'run.start', ref: 'bad-step', task: 'x', feedback: ['no-such-step'] });
      const e5 = await s.waitFor((m) => m.type === 'error' && m.ref === 'bad-step', { from, timeoutMs: 5000, what: 'error for an unknown feedback step' });
      assert.equal(e5.param, 'feedback');

      // Still open, and still answering.
      assert.equal(s.closed, null, 'the connection is still open');
      assert.equal(s.ws.readyState, WebSocket.OPEN);
      from = s.log.length;
      s.send({ type: 'run.subscribe', run_id: 'run_nope', ref: 'still-here' });
      const e6 = await s.waitFor((m) => m.type === 'error' && m.ref === 'still-here', { from, timeoutMs: 5000, what: 'error for an unknown run' });
      assert.equal(e6.param, 'run_id');
      assert.ok(!s.log.some((m) => m.type === 'run.accepted'), 'no run was started by a bad message');
      assert.equal(s.closed, null, 'the connection is still open');
    } finally {
      await s.close();
    }
  });
});

describe('squad runs over REST', () => {
  let squad;

  before(async () => {
    squad = await startSim();
  });

  after(async () => {
    if (!squad) return;
    const code = await squad.stop();
    assert.equal(code, 0, `squad serve should drain and exit 0 on SIGTERM; stderr:\n${squad.stderr()}`);
  });

  it('POST /v1/runs, then the SSE event stream to run.completed, GET and DELETE', { timeout: RUN_TIMEOUT + 10000 }, async () => {
    const post = await fetch(squad.url('/v1/runs'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'Summarise the trade-offs of SQLite for a mobile app', workflow: 'quick' }),
    });
    assert.equal(post.status, 202, await post.clone().text());
    const { id } = await post.json();
    assert.match(id, /^run_/);

    const res = await fetch(squad.url(`/v1/runs/${id}/events`), { signal: AbortSignal.timeout(RUN_TIMEOUT) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const body = await res.text(); // the stream ends after run.completed / run.failed
    const events = [...body.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]));
    assert.ok(events.length >= 3, body);
    assert.equal(events[0].type, 'run.started');
    assert.equal(events.at(-1).type, 'run.completed', body.slice(-2000));
    for (const e of events) assert.equal(e.run_id, id);
    for (const sid of workflowSteps('quick'))
      assert.ok(events.some((e) => e.step_id === sid && (e.type === 'step.completed' || e.type === 'step.skipped')), `step ${sid}`);

    const snap = await (await fetch(squad.url(`/v1/runs/${id}`))).json();
    assert.equal(snap.state, 'completed');
    assert.ok(typeof snap.artifacts.brief === 'string' && snap.artifacts.brief.length > 0);

    const del = await fetch(squad.url(`/v1/runs/${id}`), { method: 'DELETE' });
    assert.equal(del.status, 409, 'a finished run cannot be cancelled');
    const missing = await fetch(squad.url('/v1/runs/run_0000000000000000'));
    assert.equal(missing.status, 404);
  });
});
