// sdk_test.mjs — drives a running `alloy serve` (ALLOY_URL, ALLOY_MODEL) with the official OpenAI,
// Anthropic and Ollama clients: chat, streaming, tool calls, JSON-schema output, errors.
// The model has random weights: structure, counts and framing are checked, not content.
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { Ollama } from 'ollama';

const URL_ = process.env.ALLOY_URL || 'http://127.0.0.1:11434';
const MODEL = process.env.ALLOY_MODEL || 'tiny';
const KEY = process.env.ALLOY_API_KEY || 'none';

const openai = new OpenAI({ baseURL: `${URL_}/v1`, apiKey: KEY, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: URL_, apiKey: KEY, maxRetries: 0 });
const ollama = new Ollama({ host: URL_ });

const tools = [{
  type: 'function',
  function: {
    name: 'get_weather', description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];

let failures = 0;
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`[ ok ] ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    console.log(`[FAIL] ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

await test('openai models.list', async () => {
  const list = await openai.models.list();
  assert.ok(list.data.some((m) => m.id === MODEL));
});

await test('openai chat', async () => {
  const r = await openai.chat.completions.create({
    model: MODEL, max_tokens: 10, temperature: 0,
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 10);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

await test('openai chat streaming equals non-streaming (greedy)', async () => {
  const req = { model: MODEL, max_tokens: 12, temperature: 0, messages: [{ role: 'user', content: 'Count' }] };
  const plain = await openai.chat.completions.create(req);
  const stream = await openai.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    if (c.choices.length) {
      text += c.choices[0].delta.content || '';
      if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
    }
  }
  assert.equal(text, plain.choices[0].message.content);
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, plain.usage.completion_tokens);
  assert.ok(chunks >= 3);
});

await test('openai completions with stop and logprobs', async () => {
  const r = await openai.completions.create({ model: MODEL, prompt: 'Once upon', max_tokens: 6, temperature: 0, logprobs: 2 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].logprobs.tokens.length, r.usage.completion_tokens);
});

await test('openai tools request', async () => {
  const r = await openai.chat.completions.create({
    model: MODEL, max_tokens: 8, tools, tool_choice: 'auto', parallel_tool_calls: true,
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' },
    ],
  });
  const m = r.choices[0].message;
  assert.ok(typeof m.content === 'string' || Array.isArray(m.tool_calls));
  if (m.tool_calls) for (const c of m.tool_calls) { assert.equal(c.type, 'function'); JSON.parse(c.function.arguments); }
});

await test('openai json_schema output is valid JSON', async () => {
  for (let seed = 1; seed <= 3; seed++) {
    const r = await openai.chat.completions.create({
      model: MODEL, max_tokens: 48, seed,
      messages: [{ role: 'user', content: 'A person as JSON' }],
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema: { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } } } } },
    });
    const v = JSON.parse(r.choices[0].message.content);
    assert.equal(typeof v, 'object');
  }
});

await test('openai errors', async () => {
  await assert.rejects(openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
  await assert.rejects(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }),
    (e) => e instanceof OpenAI.BadRequestError && /temperature/.test(e.message));
});

await test('anthropic messages', async () => {
  const r = await anthropic.messages.create({
    model: 'claude-sonnet-4-5', max_tokens: 9, system: 'Be terse.', messages: [{ role: 'user', content: 'Hi' }],
  });
  assert.equal(r.type, 'message');
  assert.equal(r.role, 'assistant');
  assert.equal(r.content[0].type, 'text');
  assert.ok(['end_turn', 'max_tokens', 'stop_sequence'].includes(r.stop_reason));
  assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens <= 9);
  const n = await anthropic.messages.countTokens({ model: 'claude-sonnet-4-5', system: 'Be terse.', messages: [{ role: 'user', content: 'Hi' }] });
  assert.equal(n.input_tokens, r.usage.input_tokens);
});

await test('anthropic streaming event sequence', async () => {
  const stream = anthropic.messages.stream({ model: 'claude-x', max_tokens: 8, messages: [{ role: 'user', content: 'Go' }] });
  const types = [];
  let text = '';
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
  }
  const final = await stream.finalMessage();
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  assert.ok(types.includes('content_block_start') && types.includes('content_block_stop') && types.includes('message_delta'));
  assert.equal(final.content[0].text, text);
});

await test('anthropic tool_use history', async () => {
  const r = await anthropic.messages.create({
    model: 'claude-x', max_tokens: 6,
    tools: [{ name: 'get_weather', description: 'weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
    tool_choice: { type: 'auto' },
    messages: [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'rain' }] },
    ],
  });
  assert.equal(r.type, 'message');
  for (const b of r.content) if (b.type === 'tool_use') assert.equal(typeof b.input, 'object');
});

await test('anthropic errors', async () => {
  await assert.rejects(anthropic.messages.create({ model: 'x', max_tokens: 5, messages: [{ role: 'robot', content: 'x' }] }),
    (e) => e instanceof Anthropic.BadRequestError && e.error?.error?.type === 'invalid_request_error');
});

await test('ollama chat, stream, generate', async () => {
  const r = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Hey' }], options: { num_predict: 6, seed: 3 } });
  assert.equal(r.message.role, 'assistant');
  assert.equal(r.done, true);
  assert.ok(r.eval_count <= 6 && r.prompt_eval_count > 0 && r.total_duration > 0);
  const parts = [];
  for await (const p of await ollama.chat({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'Hey' }], options: { num_predict: 6, seed: 3 } })) parts.push(p);
  assert.equal(parts.at(-1).done, true);
  assert.equal(parts.map((p) => p.message.content).join(''), r.message.content);
  const g = await ollama.generate({ model: MODEL, prompt: 'Why?', options: { num_predict: 5 } });
  assert.equal(typeof g.response, 'string');
  const tags = await ollama.list();
  assert.ok(tags.models.length >= 1);
  const show = await ollama.show({ model: MODEL });
  assert.ok(show.model_info);
  await ollama.ps();
});

await test('ollama format schema and tools', async () => {
  const r = await ollama.chat({
    model: MODEL, messages: [{ role: 'user', content: 'JSON please' }], options: { num_predict: 48 },
    format: { type: 'object', properties: { a: { type: 'number' } } },
  });
  assert.equal(typeof JSON.parse(r.message.content), 'object');
  const t = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'weather?' }], tools, options: { num_predict: 6 } });
  if (t.message.tool_calls) for (const c of t.message.tool_calls) assert.equal(typeof c.function.arguments, 'object');
});

await test('ollama errors', async () => {
  await assert.rejects(ollama.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status_code === 404 || /not found/.test(String(e.message)));
});

console.log(failures ? `${failures} failed` : 'all passed');
process.exit(failures ? 1 : 0);
