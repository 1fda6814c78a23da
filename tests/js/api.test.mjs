// The smaller promises of the OpenAI-compatible API, through the official openai SDK and plain fetch: model
// lookup, ids unique across restarts, x-request-id on every answer, error bodies in Squad's own words, and a
// cache-only miss that is not a rate limit. Same setup as openai.test.mjs (two OpenAI-style mock upstreams).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { mockYaml, squadYaml, startMock, startSquad } from './harness.mjs';

describe('squad serve API details', () => {
  let mock;
  let squad;
  let client;

  before(async () => {
    mock = await startMock(mockYaml);
    squad = await startSquad({ yaml: squadYaml(mock) });
    client = new OpenAI({ baseURL: squad.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30000 });
  });

  after(async () => {
    const code = squad ? await squad.stop() : 0;
    if (mock) await mock.stop();
    assert.equal(code, 0, 'squad serve drains and exits 0');
  });

  const ask = { messages: [{ role: 'user', content: 'Say hello' }] };

  it('models.retrieve finds a provider model, a persona and an alias; an unknown id is 404', async () => {
    assert.equal((await client.models.retrieve('main/m')).id, 'main/m');
    const persona = await client.models.retrieve('persona/analyst');
    assert.equal(persona.squad_kind, 'persona');
    const alias = await client.models.retrieve('fast');
    assert.equal(alias.squad_target, 'main/m');
    const escaped = await fetch(squad.url('/v1/models/persona%2Fanalyst'));
    assert.equal(escaped.status, 200);
    await assert.rejects(client.models.retrieve('nope/x'), (err) => err.status === 404 && err.param === 'model');
  });

  it('through persona and direct models alike, the upstream gets no max_tokens or temperature it was not sent', async () => {
    for (const model of ['persona/analyst', 'main/m']) {
      await client.chat.completions.create({ model, ...ask });
      const r = await fetch(`http://127.0.0.1:${mock.port('main')}/admin/requests`);
      const last = (await r.json()).requests.at(-1).body;
      assert.equal('max_tokens' in last, false, `${model}: ${JSON.stringify(last)}`);
      assert.equal('temperature' in last, false, model);
    }
  });

  it('completion ids are random, not a counter', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await client.chat.completions.create({ model: 'main/m', ...ask })).id);
    for (const id of ids) assert.match(id, /^chatcmpl-[0-9a-z]{24}$/);
    assert.equal(new Set(ids).size, 3);
  });

  it('x-request-id: the client\'s echoed, else a new one, on answers and errors alike', async () => {
    const mine = await fetch(squad.url('/v1/chat/completions'), {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'trace-abc-1' },
      body: JSON.stringify({ model: 'main/m', ...ask }),
    });
    assert.equal(mine.status, 200);
    assert.equal(mine.headers.get('x-request-id'), 'trace-abc-1');
    const error = await fetch(squad.url('/v1/models/none/such'));
    assert.equal(error.status, 404);
    assert.match(error.headers.get('x-request-id'), /^req_[0-9a-z]{24}$/);
    const stream = await client.chat.completions.create({ model: 'main/m', ...ask, stream: true }).withResponse();
    assert.match(stream.response.headers.get('x-request-id'), /^req_/);
    for await (const _ of stream.data); // drain
  });

  it('invalid JSON is a 400 in Squad\'s words, not the JSON library\'s', async () => {
    const r = await fetch(squad.url('/v1/chat/completions'), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "main/m", "messages": [',
    });
    assert.equal(r.status, 400);
    const body = await r.json();
    assert.match(body.error.message, /not valid JSON/);
    assert.doesNotMatch(body.error.message, /parse_error|syntax error|\[json\.exception/);
  });

  it('X-Squad-Timeout sets the call\'s deadline: a slow chain is answered by then, not after 60 s; bad values are 400', async () => {
    // Both upstreams stall 5 s; a client asking for 700 ms gets its answer (an error) within about that, not after
    // server.call_timeout (60 s by default).
    const fault = (name, body) =>
      fetch(`http://127.0.0.1:${mock.port(name)}/admin/fault`, { method: 'POST', body: JSON.stringify(body) });
    for (const name of ['main', 'spare']) assert.equal((await fault(name, { mode: 'slow', slow_ms: 5000 })).status, 200);
    try {
      const t0 = Date.now();
      const r = await fetch(squad.url('/v1/chat/completions'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-squad-timeout': '700ms' },
        body: JSON.stringify({ model: 'persona/analyst', ...ask }),
        signal: AbortSignal.timeout(10000),
      });
      const took = Date.now() - t0;
      assert.ok(r.status >= 500, `a call past its deadline fails (${r.status}: ${await r.clone().text()})`);
      assert.ok(took < 3000, `answered in ${took} ms, within about its 700 ms deadline`);
    } finally {
      for (const name of ['main', 'spare']) await fault(name, { mode: 'none' });
    }
    for (const bad of ['0', 'soon', '-5', '120s']) {
      const r = await fetch(squad.url('/v1/chat/completions'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-squad-timeout': bad },
        body: JSON.stringify({ model: 'persona/analyst', ...ask }),
      });
      assert.equal(r.status, 400, `X-Squad-Timeout: ${bad}`);
      assert.equal((await r.json()).error.param, 'X-Squad-Timeout');
    }
  });

  it('X-Squad-Cache: only on a miss is a 404 cache_miss, not a 429 rate limit', async () => {
    const r = await fetch(squad.url('/v1/chat/completions'), {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-squad-cache': 'only' },
      body: JSON.stringify({ model: 'main/m', messages: [{ role: 'user', content: `never asked ${Date.now()}` }] }),
    });
    assert.equal(r.status, 404);
    const body = await r.json();
    assert.equal(body.error.code, 'cache_miss');
    assert.notEqual(body.error.type, 'rate_limit_exceeded');
  });
});
