// permessage-deflate interop between wscope and Node `ws` (RFC 7692), both ways.
//
// Usage: node deflate_interop.js WSCOPE_BINARY
//
// 1. Their client -> `wscope serve --echo --compress`, for each parameter combination ws
//    offers: the negotiated response is checked and 20 compressible texts plus a 1 MiB binary
//    message are echoed (context takeover exercised across messages).
// 2. `wscope connect --compress` -> their compressing echo server configured with each
//    combination: every stdin line must come back, and deflate must have been negotiated.
//
// Prints one line per check and a closing "N passed, N failed" line; exit status 1 on failure.

'use strict';

const { spawn } = require('child_process');
const net = require('net');
const crypto = require('crypto');
const WebSocket = require('ws');

// [serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits]
const COMBOS = [
  [false, false, undefined, undefined],
  [true, false, undefined, undefined],
  [false, true, undefined, undefined],
  [true, true, undefined, undefined],
  [false, false, 10, undefined],
  [false, false, undefined, 9],
  [true, true, 9, 12],
];

let passed = 0;
let failed = 0;
function check(ok, what) {
  if (ok) { passed++; console.log(`ok   ${what}`); } else { failed++; console.log(`FAIL ${what}`); }
}

function describe(c) {
  return `snct=${+c[0]} cnct=${+c[1]} sbits=${c[2]} cbits=${c[3]}`;
}

function deflateOptions(c) {
  const o = { threshold: 0, serverNoContextTakeover: c[0], clientNoContextTakeover: c[1] };
  if (c[2] !== undefined) o.serverMaxWindowBits = c[2];
  if (c[3] !== undefined) o.clientMaxWindowBits = c[3];
  return o;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function waitPort(port) {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function session(url, opts, work) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: opts, maxPayload: 64 << 20 });
    const inbox = [];
    let waiter = null;
    ws.on('message', (data, isBinary) => {
      inbox.push({ data, isBinary });
      if (waiter) { const w = waiter; waiter = null; w(); }
    });
    const next = () => new Promise((r) => {
      if (inbox.length) r(inbox.shift()); else waiter = () => r(inbox.shift());
    });
    ws.on('error', (e) => resolve({ error: e }));
    ws.on('upgrade', (res) => { ws.agreed = res.headers['sec-websocket-extensions'] || ''; });
    ws.on('open', async () => {
      try { resolve(await work(ws, next)); } catch (e) { resolve({ error: e }); }
    });
  });
}

async function theirClientToOurServer(binary) {
  const port = await freePort();
  const server = spawn(binary, ['serve', '--echo', '--compress', '--port', String(port)], { stdio: 'ignore' });
  await waitPort(port);
  const text = 'node ws compresses this sentence again and again; '.repeat(40);
  const big = Buffer.concat(Array(4096).fill(crypto.randomBytes(256)));
  for (const c of COMBOS) {
    const name = `node client -> wscope server, ${describe(c)}`;
    const r = await session(`ws://127.0.0.1:${port}/`, deflateOptions(c), async (ws, next) => {
      let ok = true;
      for (let i = 0; i < 20; i++) {
        ws.send(`${i}: ${text}`);
        const m = await next();
        ok = ok && !m.isBinary && m.data.toString() === `${i}: ${text}`;
      }
      ws.send(big);
      const m = await next();
      ok = ok && m.isBinary && Buffer.compare(m.data, big) === 0;
      const closed = new Promise((res) => ws.on('close', (code) => res(code)));
      ws.close(1000, 'bye');
      return { ok, agreed: ws.agreed, code: await closed };
    });
    if (r.error) { check(false, `${name}: ${r.error}`); continue; }
    const okNeg = r.agreed.startsWith('permessage-deflate') &&
      r.agreed.includes('server_no_context_takeover') === c[0] &&
      (c[2] === undefined || r.agreed.includes(`server_max_window_bits=${c[2]}`));
    check(okNeg, `${name}: negotiated '${r.agreed}'`);
    check(r.ok, `${name}: 20 texts and a 1 MiB binary echoed`);
    check(r.code === 1000, `${name}: clean close ${r.code}`);
  }
  server.kill();
}

async function ourClientToTheirServer(binary) {
  const lines = [];
  for (let i = 0; i < 30; i++) lines.push(`line ${i} ` + 'repeat me please '.repeat((i % 7) + 1));
  for (const c of COMBOS) {
    const name = `wscope client -> node server, ${describe(c)}`;
    let agreed = '';
    const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, perMessageDeflate: deflateOptions(c) });
    wss.on('headers', (headers) => {
      const h = headers.find((x) => x.toLowerCase().startsWith('sec-websocket-extensions'));
      if (h) agreed = h.split(': ').slice(1).join(': ');
    });
    wss.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
    await new Promise((r) => wss.on('listening', r));
    const port = wss.address().port;
    const got = await new Promise((resolve) => {
      const proc = spawn(binary, ['connect', '--compress', `ws://127.0.0.1:${port}/`]);
      let out = '';
      let err = '';
      const timer = setTimeout(() => proc.kill(), 30000);
      proc.stderr.on('data', (d) => { err += d; });
      proc.stdout.on('data', (d) => {
        out += d;
        // Close stdin once every echo is back: `wscope connect` closes at stdin EOF.
        if (out.split('\n').length > lines.length) proc.stdin.end();
      });
      proc.on('close', (code) => { clearTimeout(timer); resolve({ out, err, code }); });
      proc.stdin.write(lines.join('\n') + '\n');
    });
    const echoed = got.out.split('\n').filter((l) => l.length > 0);
    check(agreed.startsWith('permessage-deflate'), `${name}: negotiated '${agreed}'`);
    const same = echoed.length === lines.length && echoed.every((l, i) => l === lines[i]);
    check(same && got.code === 0,
      `${name}: ${echoed.length}/${lines.length} lines echoed, exit ${got.code}` +
      (same ? '' : ` (${got.err.trim().slice(0, 200)})`));
    await new Promise((r) => wss.close(r));
  }
}

(async () => {
  const binary = process.argv[2];
  await theirClientToOurServer(binary);
  await ourClientToTheirServer(binary);
  console.log(`deflate interop (node): ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
