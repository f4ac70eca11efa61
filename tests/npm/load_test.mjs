// load_test.mjs — N concurrent streaming clients (default 32) against a running `alloy serve` for
// DURATION seconds (default 30) after a single-client baseline; every response must be complete
// (finish_reason, usage, [DONE]) and consistent, no request may fail, and the server's RSS
// (/proc/ALLOY_PID/status) must stay flat. Prints aggregate tokens/s against one client alone.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';

const URL_ = process.env.ALLOY_URL || 'http://127.0.0.1:11434';
const MODEL = process.env.ALLOY_MODEL || 'tiny';
const PID = process.env.ALLOY_PID;
const CLIENTS = +(process.env.LOAD_CLIENTS || 32);
const DURATION = +(process.env.LOAD_SECONDS || 30);
const BASE = +(process.env.LOAD_BASELINE_SECONDS || 8);

const client = new OpenAI({ baseURL: `${URL_}/v1`, apiKey: process.env.ALLOY_API_KEY || 'none', maxRetries: 0, timeout: 120000 });

function rssKB() {
  if (!PID) return 0;
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${PID}/status`, 'utf8'));
  return m ? +m[1] : 0;
}

async function one(id, seq) {
  const max = 16 + ((id * 7 + seq * 13) % 49);
  const stream = await client.chat.completions.create({
    model: MODEL, max_tokens: max, temperature: 0.8, seed: id * 1000 + seq, stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: `client ${id} request ${seq}: tell me a story` }],
  });
  let finish = null, usage = null, chunks = 0, text = '';
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    if (c.choices.length) {
      text += c.choices[0].delta.content || '';
      if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
    }
  }
  assert.ok(finish === 'stop' || finish === 'length', `finish_reason ${finish}`);
  assert.ok(usage, 'usage chunk missing');
  if (finish === 'length') assert.equal(usage.completion_tokens, max);
  assert.ok(usage.completion_tokens <= max && usage.completion_tokens >= 1);
  assert.ok(chunks >= 2);
  return usage.completion_tokens;
}

async function run(nClients, seconds, onTick) {
  const stop = Date.now() + seconds * 1000;
  let tokens = 0, requests = 0, errors = 0;
  const firstErrors = [];
  const t0 = Date.now();
  const timer = onTick ? setInterval(onTick, 500) : null;
  await Promise.all(Array.from({ length: nClients }, async (_, id) => {
    for (let seq = 0; Date.now() < stop; seq++) {
      try {
        const n = await one(id, seq);
        tokens += n;
        requests++;
      } catch (e) {
        errors++;
        if (firstErrors.length < 5) firstErrors.push(String(e && e.message ? e.message : e));
      }
    }
  }));
  if (timer) clearInterval(timer);
  const secs = (Date.now() - t0) / 1000;
  return { tokens, requests, errors, secs, tps: tokens / secs, firstErrors };
}

const base = await run(1, BASE);
console.log(`baseline: 1 client, ${base.requests} requests, ${base.tokens} tokens in ${base.secs.toFixed(1)} s = ${base.tps.toFixed(1)} tok/s`);
const samples = [];
const tStart = Date.now();
const load = await run(CLIENTS, DURATION, () => samples.push({ t: (Date.now() - tStart) / 1000, kb: rssKB() }));
console.log(`load: ${CLIENTS} clients, ${load.requests} requests, ${load.tokens} tokens in ${load.secs.toFixed(1)} s = ${load.tps.toFixed(1)} tok/s (x${(load.tps / base.tps).toFixed(2)} vs one client)`);
let ok = load.errors === 0 && base.errors === 0 && load.requests >= CLIENTS;
if (!ok) console.log(`errors: ${load.errors + base.errors}: ${load.firstErrors.concat(base.firstErrors).join(' | ')}`);
if (PID && samples.length > 6) {
  const third = Math.floor(samples.length / 3);
  const early = Math.max(...samples.slice(0, third).map((s) => s.kb));
  const late = Math.max(...samples.slice(2 * third).map((s) => s.kb));
  const flat = late <= early * 1.25 + 16384;
  console.log(`rss: first third max ${(early / 1024).toFixed(1)} MB, last third max ${(late / 1024).toFixed(1)} MB -> ${flat ? 'flat' : 'GROWING'}`);
  ok = ok && flat;
}
console.log(`RESULT ${JSON.stringify({ clients: CLIENTS, seconds: +load.secs.toFixed(1), requests: load.requests, tokens: load.tokens, tps: +load.tps.toFixed(1), baseline_tps: +base.tps.toFixed(1), errors: load.errors })}`);
process.exit(ok ? 0 : 1);
