// `squad serve` driven by the official OpenAI Node SDK, in front of squad-mock-provider (the C++ serve test's setup).
// The SDK's own parsing is the check: a field it cannot read, an SSE frame it rejects or an error body it does not
// map shows up here. Retries are off so a server error is never hidden by a second attempt.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startServed } from './harness.mjs';

describe('squad serve with the openai SDK', () => {
  let served;
  let client;

  before(async () => {
    served = await startServed();
    client = new OpenAI({ baseURL: served.squad.baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30000 });
  });

  after(async () => {
    if (!served) return;
    const code = await served.stop();
    assert.equal(code, 0, `squad serve should drain and exit 0 on SIGTERM; stderr:\n${served.squad.stderr()}`);
  });

  it('chat.completions.create on persona/analyst answers content and usage', async () => {
    const r = await client.chat.completions.create({
      model: 'persona/analyst',
      messages: [{ role: 'user', content: 'Say hello' }],
      max_tokens: 32,
    });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'persona/analyst');
    assert.ok(typeof r.id === 'string' && r.id.length > 0, 'an id');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.ok(typeof r.choices[0].message.content === 'string' && r.choices[0].message.content.length > 0,
      `non-empty content: ${JSON.stringify(r.choices[0].message)}`);
    assert.ok(typeof r.choices[0].finish_reason === 'string', 'a finish_reason');
    assert.ok(r.usage, 'usage present');
    assert.ok(r.usage.completion_tokens > 0, `completion_tokens > 0: ${JSON.stringify(r.usage)}`);
    assert.ok(r.usage.prompt_tokens >= 0);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  });

  it('stream: true yields chunks that add up to the answer, with a finish_reason and usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'persona/analyst',
      messages: [{ role: 'user', content: 'Say hello' }],
      max_tokens: 32,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        if (typeof choice.delta?.content === 'string') text += choice.delta.content;
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    assert.ok(chunks >= 2, `several chunks (got ${chunks})`);
    assert.ok(text.length > 0, 'the assembled text is not empty');
    assert.ok(typeof finish === 'string' && finish.length > 0, 'some chunk carried a finish_reason');
    assert.ok(usage && usage.completion_tokens > 0, `a usage chunk (include_usage): ${JSON.stringify(usage)}`);
  });

  it('an unknown model throws NotFoundError (404) listing the valid model forms', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
      (err) => {
        assert.ok(err instanceof OpenAI.NotFoundError, `a NotFoundError, got ${err?.constructor?.name}: ${err}`);
        assert.equal(err.status, 404);
        assert.equal(err.code, 'model_not_found');
        assert.equal(err.param, 'model');
        assert.match(err.message, /persona\/<id>/, 'the message names the persona/<id> form');
        assert.match(err.message, /persona\/analyst/, 'the message lists the configured persona');
        return true;
      },
    );
  });

  it('models.list() includes persona/analyst, the provider models and the aliases', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      ids.push(m.id);
    }
    for (const want of ['persona/analyst', 'main/m', 'spare/m', 'fast', 'helper'])
      assert.ok(ids.includes(want), `${want} listed in ${JSON.stringify(ids)}`);
  });
});
