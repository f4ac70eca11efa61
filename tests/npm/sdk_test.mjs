// sdk_test.mjs — drives a running `alloy serve` (ALLOY_URL, ALLOY_MODEL) with the official OpenAI,
// Anthropic and Ollama clients: chat, streaming, tool calls, JSON-schema output, errors.
// The model has random weights: structure, counts and framing are checked, not content; output
// constrained by a JSON schema or a forced tool_choice must validate against its schema
// (validate() below, written from the JSON-Schema spec for the subset alloy supports).
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

// Tools whose arguments a random model can finish: enums, booleans, closed objects.
const strictTools = [
  {
    type: 'function',
    function: {
      name: 'get_weather', description: 'Weather in a city',
      parameters: {
        type: 'object', additionalProperties: false, required: ['city'],
        properties: { city: { type: 'string', enum: ['Paris', 'Oslo', 'Rome'] }, days: { type: 'integer' } },
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time', description: 'Local time',
      parameters: {
        type: 'object', additionalProperties: false, required: ['tz', 'utc'],
        properties: { tz: { type: 'string' }, utc: { type: 'boolean' } },
      },
    },
  },
];
const paramsOf = (name) => strictTools.find((t) => t.function.name === name)?.function.parameters;

const personSchema = {
  type: 'object', additionalProperties: false, required: ['name', 'age'],
  properties: {
    name: { type: 'string' }, age: { type: 'integer' },
    tags: { type: 'array', items: { enum: ['red', 'blue'] } }, pet: { anyOf: [{ type: 'null' }, { type: 'boolean' }] },
  },
};

// JSON-Schema subset: type, properties, required, additionalProperties, items, enum, const, anyOf.
function validate(v, s) {
  if (s === true) return true;
  if (s === false) return false;
  if (s.anyOf) return s.anyOf.some((b) => validate(v, b));
  if ('const' in s && JSON.stringify(s.const) !== JSON.stringify(v)) return false;
  if (s.enum && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) return false;
  const typeOk = (t) => ({
    object: v !== null && typeof v === 'object' && !Array.isArray(v), array: Array.isArray(v), string: typeof v === 'string',
    number: typeof v === 'number', integer: Number.isInteger(v), boolean: typeof v === 'boolean', null: v === null,
  })[t];
  if (s.type && !(Array.isArray(s.type) ? s.type.some(typeOk) : typeOk(s.type))) return false;
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const r of s.required || []) if (!(r in v)) return false;
    for (const [k, x] of Object.entries(v)) {
      const ps = s.properties?.[k];
      if (ps) { if (!validate(x, ps)) return false; } else if (s.additionalProperties === false) return false;
      else if (typeof s.additionalProperties === 'object' && !validate(x, s.additionalProperties)) return false;
    }
  }
  if (Array.isArray(v) && s.items) return v.every((x) => validate(x, s.items));
  return true;
}

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

await test('openai json_schema output validates against the schema', async () => {
  for (let seed = 1; seed <= 3; seed++) {
    const req = {
      model: MODEL, max_tokens: 128, seed,
      messages: [{ role: 'user', content: 'A person as JSON' }],
      response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema: personSchema } },
    };
    const r = await openai.chat.completions.create(req);
    const v = JSON.parse(r.choices[0].message.content);
    assert.ok(validate(v, personSchema), r.choices[0].message.content);
    assert.equal(r.choices[0].finish_reason, 'stop');
    let text = '';
    for await (const c of await openai.chat.completions.create({ ...req, stream: true })) text += c.choices[0]?.delta?.content || '';
    assert.equal(text, r.choices[0].message.content);
  }
});

await test('openai tool_choice required / named: one valid call, streamed the same', async () => {
  for (const [tool_choice, want] of [['required', null], [{ type: 'function', function: { name: 'get_time' } }, 'get_time']]) {
    for (let seed = 1; seed <= 2; seed++) {
      const req = { model: MODEL, max_tokens: 128, seed, tools: strictTools, tool_choice, messages: [{ role: 'user', content: 'Call a tool' }] };
      const r = await openai.chat.completions.create(req);
      const m = r.choices[0].message;
      assert.equal(r.choices[0].finish_reason, 'tool_calls');
      assert.equal(m.tool_calls.length, 1);
      const call = m.tool_calls[0];
      if (want) assert.equal(call.function.name, want);
      assert.ok(paramsOf(call.function.name), call.function.name);
      assert.ok(validate(JSON.parse(call.function.arguments), paramsOf(call.function.name)), call.function.arguments);
      // streamed: the SDK's deltas reassemble into the same call
      const calls = [];
      let finish = null;
      for await (const c of await openai.chat.completions.create({ ...req, stream: true })) {
        for (const d of c.choices[0]?.delta?.tool_calls || []) {
          calls[d.index] ??= { id: '', name: '', arguments: '' };
          if (d.id) calls[d.index].id = d.id;
          if (d.function?.name) calls[d.index].name += d.function.name;
          if (d.function?.arguments) calls[d.index].arguments += d.function.arguments;
        }
        if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
      }
      assert.equal(finish, 'tool_calls');
      assert.equal(calls.length, 1);
      assert.ok(calls[0].id.startsWith('call_'));
      assert.equal(calls[0].name, call.function.name);
      assert.equal(calls[0].arguments, call.function.arguments);
    }
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
  assert.equal(n.input_tokens, r.usage.input_tokens + (r.usage.cache_read_input_tokens ?? 0));
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

await test('anthropic tool_choice tool: one valid tool_use, streamed the same', async () => {
  const tools_ = strictTools.map((t) => ({ name: t.function.name, description: t.function.description, input_schema: t.function.parameters }));
  for (const tool_choice of [{ type: 'tool', name: 'get_weather' }, { type: 'any' }]) {
    const req = { model: 'claude-x', max_tokens: 128, temperature: 0, tools: tools_, tool_choice, messages: [{ role: 'user', content: 'Call' }] };
    const r = await anthropic.messages.create(req);
    assert.equal(r.stop_reason, 'tool_use');
    const uses = r.content.filter((b) => b.type === 'tool_use');
    assert.equal(uses.length, 1);
    if (tool_choice.name) assert.equal(uses[0].name, tool_choice.name);
    assert.ok(validate(uses[0].input, paramsOf(uses[0].name)), JSON.stringify(uses[0].input));
    const stream = anthropic.messages.stream(req);
    let partial = '';
    for await (const ev of stream) if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') partial += ev.delta.partial_json;
    const final = await stream.finalMessage();
    const su = final.content.filter((b) => b.type === 'tool_use');
    assert.equal(su.length, 1);
    assert.equal(su[0].name, uses[0].name);
    assert.deepEqual(su[0].input, uses[0].input);
    assert.deepEqual(JSON.parse(partial), uses[0].input);
    assert.equal(final.stop_reason, 'tool_use');
  }
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
  for (let seed = 1; seed <= 3; seed++) {
    const req = { model: MODEL, messages: [{ role: 'user', content: 'JSON please' }], options: { num_predict: 128, seed }, format: personSchema };
    const r = await ollama.chat(req);
    assert.ok(validate(JSON.parse(r.message.content), personSchema), r.message.content);
    assert.equal(r.done_reason, 'stop');
    let text = '';
    for await (const p of await ollama.chat({ ...req, stream: true })) text += p.message.content;
    assert.equal(text, r.message.content);
  }
  const g = await ollama.generate({ model: MODEL, prompt: 'JSON please', format: personSchema, options: { num_predict: 128, seed: 4 } });
  assert.ok(validate(JSON.parse(g.response), personSchema), g.response);
  // tool_choice is an alloy extension of the Ollama API (the client passes it through)
  const tr = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'weather?' }], tools: strictTools, tool_choice: 'required', options: { num_predict: 128, seed: 2 } });
  assert.equal(tr.message.tool_calls.length, 1);
  const fc = tr.message.tool_calls[0].function;
  assert.ok(validate(fc.arguments, paramsOf(fc.name)), JSON.stringify(fc));
  const t = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'weather?' }], tools, options: { num_predict: 6 } });
  if (t.message.tool_calls) for (const c of t.message.tool_calls) assert.equal(typeof c.function.arguments, 'object');
});

await test('ollama errors', async () => {
  await assert.rejects(ollama.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status_code === 404 || /not found/.test(String(e.message)));
});

console.log(failures ? `${failures} failed` : 'all passed');
process.exit(failures ? 1 : 0);
