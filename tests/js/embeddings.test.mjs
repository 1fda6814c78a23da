// POST /v1/embeddings through `squad serve`, driven by the official openai SDK: a simulated provider, an
// OpenAI-style mock upstream (whose GET /admin/requests shows what reached it), and an Anthropic-style one, which has
// no embeddings API: a chain that starts there falls back past it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { sourceDir, startMock, startSquad } from './harness.mjs';

const mockYaml = `upstreams:
  oa:
    listen: 127.0.0.1:0
    style: openai
    limits: {requests: 1000, per: 1s, concurrency: 0}
  an:
    listen: 127.0.0.1:0
    style: anthropic
    limits: {requests: 1000, per: 1s, concurrency: 0}
`;

function squadYaml(mock) {
  const limits = '    limits: {requests: 1000, per: 1s, burst: 100, concurrency: 16}\n';
  return `personas_dir: ${sourceDir}/personas\nworkflows_dir: ${sourceDir}/config/workflows\n` +
    'server: {listen: 127.0.0.1:0}\n' +
    'providers:\n' +
    `  oa:\n    kind: openai\n    base_url: http://127.0.0.1:${mock.port('oa')}/v1\n${limits}` +
    '    models:\n      emb: {id: mock-embed, tier: worker}\n' +
    `  an:\n    kind: anthropic\n    base_url: http://127.0.0.1:${mock.port('an')}\n    api_key: test-key-123456\n${limits}` +
    '    models:\n      m: {id: claude-mock, tier: worker}\n' +
    `  sm:\n    kind: sim\n${limits}    sim: {latency: 1ms}\n    models:\n      m: {id: sim-m, tier: worker}\n` +
    'personas:\n  analyst: {chain: [an/m, oa/emb]}\n';
}

describe('embeddings', () => {
  let mock;
  let squad;
  let client;

  before(async () => {
    mock = await startMock(mockYaml);
    try {
      squad = await startSquad({ yaml: squadYaml(mock) });
    } catch (err) {
      await mock.stop();
      throw err;
    }
    client = new OpenAI({ baseURL: squad.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30000 });
  });

  after(async () => {
    const code = squad ? await squad.stop() : 0;
    if (mock) await mock.stop();
    assert.equal(code, 0, `squad serve should drain and exit 0; stderr:\n${squad?.stderr()}`);
  });

  async function received(upstream) {
    const r = await fetch(`http://127.0.0.1:${mock.port(upstream)}/admin/requests`);
    assert.equal(r.status, 200);
    return (await r.json()).requests.filter((x) => x.path === '/v1/embeddings').map((x) => x.body);
  }

  it('a simulated provider answers one deterministic unit vector per input (the SDK asks for base64)', async () => {
    const a = await client.embeddings.create({ model: 'sm/m', input: ['turn on the light', 'turn off the light'], dimensions: 16 });
    assert.equal(a.object, 'list');
    assert.equal(a.model, 'sm/m');
    assert.equal(a.data.length, 2);
    for (const [i, d] of a.data.entries()) {
      assert.equal(d.index, i);
      assert.equal(d.embedding.length, 16);
      const norm = Math.sqrt(d.embedding.reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(norm - 1) < 1e-4, `unit length, got ${norm}`);
    }
    assert.notDeepEqual(a.data[0].embedding, a.data[1].embedding);
    const again = await client.embeddings.create({ model: 'sm/m', input: 'turn on the light', dimensions: 16, encoding_format: 'float' });
    assert.deepEqual(again.data[0].embedding.map((x) => Math.fround(x)), a.data[0].embedding);
    assert.ok(a.usage.prompt_tokens > 0);
  });

  it('an OpenAI-compatible upstream receives the request as the client wrote it', async () => {
    const r = await client.embeddings.create({ model: 'oa/emb', input: ['alpha', 'beta'], dimensions: 8, user: 'u-1', encoding_format: 'float' });
    assert.equal(r.data.length, 2);
    assert.equal(r.data[0].embedding.length, 8);
    const bodies = await received('oa');
    const last = bodies.at(-1);
    assert.deepEqual(last, { model: 'mock-embed', input: ['alpha', 'beta'], dimensions: 8, user: 'u-1', encoding_format: 'float' });
  });

  it('a persona whose chain starts at an Anthropic target falls back to one with embeddings', async () => {
    const before = (await received('oa')).length;
    const r = await client.embeddings.create({ model: 'persona/analyst', input: 'gamma', encoding_format: 'float' });
    assert.equal(r.data.length, 1);
    assert.equal((await received('oa')).length, before + 1);
  });

  it('the response cache answers a repeated embeddings call when asked (X-Squad-Cache: use)', async () => {
    const ask = { model: 'oa/emb', input: ['cache me'], encoding_format: 'float' };
    const opts = { headers: { 'X-Squad-Cache': 'use' } };
    const first = await client.embeddings.create(ask, opts);
    const sent = (await received('oa')).length;
    const second = await client.embeddings.create(ask, opts);
    assert.deepEqual(second.data, first.data);
    assert.equal((await received('oa')).length, sent, 'no second upstream call');
    const other = await client.embeddings.create({ ...ask, input: ['something else'] }, opts);
    assert.notDeepEqual(other.data[0].embedding, first.data[0].embedding);
    assert.equal((await received('oa')).length, sent + 1);
  });

  it('bad input is a 400 naming the field; an unknown model a 404', async () => {
    for (const [body, param] of [
      [{ model: 'sm/m', input: [] }, 'input'],
      [{ model: 'sm/m', input: '' }, 'input'],
      [{ model: 'sm/m', input: [1.5] }, 'input'],
      [{ model: 'sm/m', input: 'x', dimensions: 0 }, 'dimensions'],
      [{ model: 'sm/m', input: 'x', encoding_format: 'int8' }, 'encoding_format'],
      [{ model: 'sm/m' }, 'input'],
    ]) {
      await assert.rejects(client.embeddings.create(body), (err) => {
        assert.equal(err.status, 400, JSON.stringify(body));
        assert.equal(err.param, param);
        return true;
      });
    }
    await assert.rejects(client.embeddings.create({ model: 'nope/x', input: 'x' }), (err) => err.status === 404);
  });

  it('an Anthropic-only target is refused with a clear error', async () => {
    await assert.rejects(client.embeddings.create({ model: 'an/m', input: 'x', encoding_format: 'float' }), (err) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /no embeddings API/);
      return true;
    });
  });
});
