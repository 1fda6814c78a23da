// Tool calling and parameter fidelity through `squad serve`, driven by the official openai SDK, in front of
// squad-mock-provider with one OpenAI-style and one Anthropic-style upstream (plus a simulated provider for
// refusals). Each loop: the model asks for two tools (parallel calls), the client answers with tool messages, the
// model finishes; then the mock's GET /admin/requests shows what reached the upstream, so a parameter that Squad
// dropped, renamed wrongly or injected fails here.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { sourceDir, startMock, startSquad } from './harness.mjs';

const mockYaml = `upstreams:
  oa:
    listen: 127.0.0.1:0
    style: openai
    limits: {requests: 1000, per: 1s, concurrency: 0}
    reply: {tokens: 6}
  an:
    listen: 127.0.0.1:0
    style: anthropic
    limits: {requests: 1000, per: 1s, concurrency: 0}
    reply: {tokens: 6}
`;

function squadYaml(mock) {
  const limits = '    limits: {requests: 1000, per: 1s, burst: 100, concurrency: 16}\n' +
    '    timeouts: {connect: 1s, first_byte: 3s, idle: 3s, total: 10s}\n';
  return `personas_dir: ${sourceDir}/personas\nworkflows_dir: ${sourceDir}/config/workflows\n` +
    'server: {listen: 127.0.0.1:0}\n' +
    'providers:\n' +
    `  oa:\n    kind: openai\n    base_url: http://127.0.0.1:${mock.port('oa')}/v1\n${limits}` +
    '    models:\n      m: {id: mock-oa, tier: worker}\n' +
    `  os:\n    kind: openai\n    base_url: http://127.0.0.1:${mock.port('oa')}/v1\n    stream: true\n${limits}` +
    '    models:\n      m: {id: mock-oa-streamed, tier: worker}\n' +
    `  an:\n    kind: anthropic\n    base_url: http://127.0.0.1:${mock.port('an')}\n    api_key: test-key-123456\n${limits}` +
    '    models:\n      m: {id: claude-mock, tier: worker}\n' +
    '  sm:\n    kind: sim\n    limits: {requests: 1000, per: 1s, burst: 100, concurrency: 16}\n' +
    '    sim: {latency: 1ms, max_tokens: 50}\n    models:\n      m: {id: sim-m, tier: worker}\n' +
    'personas:\n  analyst: {chain: [an/m, oa/m]}\n';
}

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'The local time in a zone',
      parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] },
    },
  },
];

// Drains a streamed answer, reassembling tool calls from their deltas as an SDK user would.
async function collect(stream) {
  let content = '';
  let finish = null;
  let fingerprint = null;
  const calls = [];
  const shapes = []; // each tool-call delta, to check OpenAI's delta shape
  for await (const chunk of stream) {
    if (chunk.system_fingerprint) fingerprint = chunk.system_fingerprint;
    for (const choice of chunk.choices) {
      if (choice.delta?.content) content += choice.delta.content;
      for (const d of choice.delta?.tool_calls ?? []) {
        shapes.push(d);
        assert.equal(typeof d.index, 'number', `every tool-call delta has an index: ${JSON.stringify(d)}`);
        const c = (calls[d.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (d.id) c.id = d.id;
        if (d.function?.name) c.function.name += d.function.name;
        if (d.function?.arguments) c.function.arguments += d.function.arguments;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  return { content, finish, calls, shapes, fingerprint };
}

describe('tool calls and chat parameters through squad serve', () => {
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

  // The bodies an upstream received, newest last.
  async function received(upstream) {
    const r = await fetch(`http://127.0.0.1:${mock.port(upstream)}/admin/requests`);
    assert.equal(r.status, 200);
    return (await r.json()).requests.map((x) => x.body);
  }

  // One full loop: ask (tools offered), answer the calls, get the final text. Returns what the client saw.
  async function loop(model, stream, extra) {
    const messages = [{ role: 'user', content: 'Weather in Paris, and the time there?' }];
    const ask = { model, messages, tools, tool_choice: 'auto', ...extra };
    let first;
    if (stream) {
      first = await collect(await client.chat.completions.create({ ...ask, stream: true }));
    } else {
      const r = await client.chat.completions.create(ask);
      first = {
        content: r.choices[0].message.content ?? '',
        finish: r.choices[0].finish_reason,
        calls: r.choices[0].message.tool_calls,
        fingerprint: r.system_fingerprint ?? null,
      };
    }
    assert.equal(first.finish, 'tool_calls', `the model asks for tools: ${JSON.stringify(first)}`);
    assert.equal(first.calls?.length, 2, `two parallel tool calls: ${JSON.stringify(first.calls)}`);
    assert.deepEqual(first.calls.map((c) => c.function.name), ['get_weather', 'get_time']);
    assert.deepEqual(JSON.parse(first.calls[0].function.arguments), { city: 'mock-city' });
    assert.deepEqual(JSON.parse(first.calls[1].function.arguments), { zone: 'mock-zone' });
    for (const c of first.calls) {
      assert.ok(c.id && c.id.length > 0, `each call has an id: ${JSON.stringify(c)}`);
      assert.equal(c.type, 'function');
    }
    const assistant = { role: 'assistant', content: first.content || null, tool_calls: first.calls };
    const results = first.calls.map((c) => ({ role: 'tool', tool_call_id: c.id, content: `result of ${c.function.name}` }));
    const follow = { model, messages: [...messages, assistant, ...results], tools, ...extra };
    let final;
    if (stream) {
      final = await collect(await client.chat.completions.create({ ...follow, stream: true }));
    } else {
      const r = await client.chat.completions.create(follow);
      final = { content: r.choices[0].message.content, finish: r.choices[0].finish_reason, calls: r.choices[0].message.tool_calls };
    }
    assert.equal(final.finish, 'stop', `the model finishes in text: ${JSON.stringify(final)}`);
    assert.ok(final.content && final.content.length > 0, 'a final answer');
    assert.ok(!final.calls || final.calls.length === 0, 'no more tool calls');
    return { first, final };
  }

  const openaiExtra = {
    stop: ['END'],
    seed: 7,
    top_p: 0.9,
    frequency_penalty: 0.5,
    presence_penalty: 0.25,
    user: 'u-42',
    metadata: { team: 'qa' },
    logit_bias: { 50256: -100 },
    parallel_tool_calls: true,
    response_format: { type: 'json_object' },
  };

  for (const stream of [false, true]) {
    it(`openai upstream, stream ${stream}: a full tool loop; every parameter reaches the upstream, none injected`, async () => {
      const { first } = await loop('oa/m', stream, openaiExtra);
      assert.equal(first.fingerprint, 'fp_mock', 'system_fingerprint passed through');
      if (stream) {
        const head = first.shapes.find((d) => d.id);
        assert.ok(head.function.name, `the first delta of a call carries id and name: ${JSON.stringify(head)}`);
        assert.ok(first.shapes.length > 2, 'arguments arrive in fragments');
      }
      const [ask, follow] = (await received('oa')).slice(-2);
      assert.deepEqual(ask.tools, tools, 'tools verbatim');
      assert.equal(ask.tool_choice, 'auto');
      for (const [k, v] of Object.entries(openaiExtra)) assert.deepEqual(ask[k], v, `${k} reached the upstream`);
      assert.equal('max_tokens' in ask, false, `no injected max_tokens: ${JSON.stringify(ask)}`);
      assert.equal('temperature' in ask, false, 'no injected temperature');
      assert.equal(ask.stream, stream);
      assert.equal(follow.messages.length, 4);
      assert.equal(follow.messages[1].role, 'assistant');
      assert.deepEqual(follow.messages[1].tool_calls, first.calls.map(({ id, type, function: f }) => ({ id, type, function: f })),
        'the assistant turn keeps its tool_calls');
      assert.equal(follow.messages[2].tool_call_id, first.calls[0].id, 'tool_call_id intact');
      assert.equal(follow.messages[3].tool_call_id, first.calls[1].id);
    });

    it(`anthropic upstream, stream ${stream}: a full tool loop, translated both ways`, async () => {
      const { first } = await loop('an/m', stream, { stop: 'END', top_p: 0.5, user: 'u-7', temperature: 0.3 });
      assert.equal(first.content, 'calling tools', 'the text before the tool_use blocks is kept');
      const [ask, follow] = (await received('an')).slice(-2);
      assert.deepEqual(ask.tools, tools.map((t) => ({
        name: t.function.name, description: t.function.description, input_schema: t.function.parameters,
      })));
      assert.deepEqual(ask.tool_choice, { type: 'auto' });
      assert.deepEqual(ask.stop_sequences, ['END']);
      assert.equal(ask.top_p, 0.5);
      assert.equal(ask.temperature, 0.3);
      assert.deepEqual(ask.metadata, { user_id: 'u-7' });
      assert.equal(ask.max_tokens, 4096, 'Anthropic requires max_tokens: the documented default, nothing else');
      for (const k of ['stop', 'user', 'tool_calls', 'parallel_tool_calls']) assert.equal(k in ask, false, `${k} not sent raw`);
      const [, assistant, results] = follow.messages;
      assert.equal(assistant.role, 'assistant');
      assert.deepEqual(assistant.content.filter((b) => b.type === 'tool_use').map((b) => [b.id, b.name, b.input]),
        first.calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]));
      assert.equal(results.role, 'user');
      assert.deepEqual(results.content.map((b) => [b.type, b.tool_use_id]),
        first.calls.map((c) => ['tool_result', c.id]), 'both results in one user turn, ids intact');
    });
  }

  it('an upstream that always streams (providers.<name>.stream) answers a non-streaming client with whole calls', async () => {
    // Squad reassembles the streamed deltas into one chat.completion.
    await loop('os/m', false, {});
    const [ask] = (await received('oa')).slice(-2);
    assert.equal(ask.model, 'mock-oa-streamed');
    assert.equal(ask.stream, true, 'the upstream was asked to stream');
  });

  it('tool_choice required and a named function are translated for anthropic', async () => {
    await client.chat.completions.create({
      model: 'an/m', messages: [{ role: 'user', content: 'x' }], tools, tool_choice: 'required', parallel_tool_calls: false,
    });
    let [ask] = (await received('an')).slice(-1);
    assert.deepEqual(ask.tool_choice, { type: 'any', disable_parallel_tool_use: true });
    const r = await client.chat.completions.create({
      model: 'an/m', messages: [{ role: 'user', content: 'x' }], tools,
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    [ask] = (await received('an')).slice(-1);
    assert.deepEqual(ask.tool_choice, { type: 'tool', name: 'get_time' });
    assert.deepEqual(r.choices[0].message.tool_calls.map((c) => c.function.name), ['get_time']);
  });

  it('what a provider cannot honour is a 400 naming the parameter and the provider', async () => {
    for (const [model, body, param] of [
      ['an/m', { logprobs: true }, 'logprobs'],
      ['an/m', { n: 1, seed: 3 }, 'seed'],
      ['an/m', { response_format: { type: 'json_object' } }, 'response_format'],
      ['an/m', { some_vendor_field: 1 }, 'some_vendor_field'],
      ['sm/m', { tools }, 'tools'],
      ['oa/m', { n: 2 }, 'n'],
    ]) {
      await assert.rejects(
        client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], ...body }),
        (err) => {
          assert.equal(err.status, 400, `${model} ${param}: ${err.message}`);
          assert.equal(err.param, param, `${model}: param names ${param}: ${err.message}`);
          if (model !== 'oa/m') assert.match(err.message, new RegExp(model.split('/')[0]), 'names the provider');
          return true;
        });
    }
  });

  it('an unknown top-level field reaches an OpenAI-compatible upstream verbatim', async () => {
    await client.chat.completions.create({
      model: 'oa/m', messages: [{ role: 'user', content: 'x' }], vendor_extension: { a: [1, 2] }, max_completion_tokens: 5,
    });
    const [ask] = (await received('oa')).slice(-1);
    assert.deepEqual(ask.vendor_extension, { a: [1, 2] });
    assert.equal(ask.max_completion_tokens, 5, 'sent under the name the client used');
    assert.equal('max_tokens' in ask, false);
  });

  it('a fallback chain skips the target that cannot honour a parameter, before its limiter is asked', async () => {
    // persona/analyst's chain is [an/m, oa/m]: anthropic cannot do logprobs, so the call is served by oa/m. The
    // anthropic target is passed over at the door: its limiter grants it nothing (no slot of its window used).
    const metric = async (name, label) => {
      const text = await (await fetch(`${squad.baseURL.replace(/\/v1$/, '')}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const granted = () => metric('squad_upstream_calls_total', 'provider="an"');
    const skipped = () => metric('squad_events_total', 'type="call.target_skipped"');
    const before = await granted();
    const skippedBefore = await skipped();
    const r = await client.chat.completions.create({
      model: 'persona/analyst', messages: [{ role: 'user', content: 'x' }], logprobs: true,
    });
    assert.equal(r.squad.served_by, 'oa/m');
    assert.deepEqual(r.squad.attempts.map((a) => [a.target, a.outcome]), [['an/m', 'bad_request'], ['oa/m', 'ok']]);
    assert.equal(await granted(), before, 'no upstream call counted for an');
    assert.equal(await skipped(), skippedBefore + 1, 'the skip is counted (squad_events_total{type="call.target_skipped"})');
    const [ask] = (await received('oa')).slice(-1);
    assert.equal(ask.logprobs, true);
  });

  it('a fallback to another provider keeps the tools', async () => {
    // The anthropic upstream fails (500): persona/analyst falls back to oa/m, which gets the same tools and answers
    // with the calls.
    const fault = (mode) => fetch(`http://127.0.0.1:${mock.port('an')}/admin/fault`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mode }),
    });
    assert.equal((await fault('error500')).status, 200);
    try {
      const r = await client.chat.completions.create({
        model: 'persona/analyst', messages: [{ role: 'user', content: 'weather?' }], tools, tool_choice: 'required',
      });
      assert.equal(r.squad.served_by, 'oa/m');
      assert.equal(r.squad.attempts[0].target, 'an/m');
      assert.deepEqual(r.choices[0].message.tool_calls.map((c) => c.function.name), ['get_weather', 'get_time']);
      const [ask] = (await received('oa')).slice(-1);
      assert.deepEqual(ask.tools, tools);
      assert.equal(ask.tool_choice, 'required');
    } finally {
      await fault('none');
    }
  });

  it('bad tool messages are refused with the field named', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'oa/m', messages: [{ role: 'tool', content: 'r' }] }),
      (err) => err.status === 400 && err.param === 'messages[0].tool_call_id');
    await assert.rejects(
      client.chat.completions.create({ model: 'oa/m', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] }),
      (err) => err.status === 400 && err.param === 'tools[0].function.name');
  });
});
