#!/usr/bin/env node
// Interop peer on npm `ws` (pinned in conformance/interop/package.json).
//
//   node node_peer.js serve PORT [--cert F --key F]
//       Echo server on 127.0.0.1:PORT (wss:// with --cert/--key): echoes text as text
//       and binary as binary; ws answers pings and the closing handshake; 64 MiB
//       messages; no compression. Text commands (see README.md):
//         cmd:close:CODE:REASON  close with CODE and REASON
//         cmd:frag:N:TEXT        send TEXT as one text message in N fragments
//         cmd:ping:PAYLOAD       ping with PAYLOAD; on the matching pong send "pong-ok:PAYLOAD"
//
//   node node_peer.js client URL [--cafile F] [--close-reason-echo] [--label L]
//       Runs the interop battery against the echo server at URL (ours); prints
//       "ok NAME" / "FAIL NAME: why" and "LABEL: N passed, M failed"; exit 1 on failure.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const { WebSocket, WebSocketServer } = require('ws');

const MAX = 64 << 20;
const TIMEOUT_MS = 60000;

function arg(argv, name) {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

function pattern(n, seed) {
  const out = Buffer.alloc(n);
  let off = 0;
  for (let i = 0; off < n; i++) {
    const d = crypto.createHash('sha256').update(`${seed}:${i}`).digest();
    for (let k = 0; k < 64 && off < n; k++) off += d.copy(out, off, 0, Math.min(32, n - off));
  }
  return out;
}

function bigText(nBytes) {
  const unit = 'wscope ✓ é ж 漢 😀 ';
  const s = unit.repeat(Math.ceil(nBytes / Buffer.byteLength(unit)) + 1);
  // cut on a character boundary at or below nBytes
  let b = Buffer.from(s).subarray(0, nBytes);
  while (b.length && (b[b.length - 1] & 0xc0) === 0x80) b = b.subarray(0, b.length - 1);
  if (b.length && b[b.length - 1] >= 0xc0) b = b.subarray(0, b.length - 1);
  return b.toString('utf8');
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

// ------------------------------------------------------------------ server

function handle(ws, data, isBinary) {
  if (!isBinary) {
    const s = data.toString('utf8');
    if (s.startsWith('cmd:close:')) {
      const rest = s.slice('cmd:close:'.length);
      const i = rest.indexOf(':');
      const code = parseInt(i < 0 ? rest : rest.slice(0, i), 10);
      ws.close(code, i < 0 ? '' : rest.slice(i + 1));
      return undefined;
    }
    if (s.startsWith('cmd:frag:')) {
      const rest = s.slice('cmd:frag:'.length);
      const i = rest.indexOf(':');
      const n = parseInt(rest.slice(0, i), 10);
      const text = Buffer.from(rest.slice(i + 1));
      const k = Math.max(1, Math.ceil(text.length / n));
      for (let off = 0; ; off += k) {
        const last = off + k >= text.length;
        // fragments of one text message, cut by bytes: UTF-8 sequences may span frames
        ws.send(text.subarray(off, off + k), { binary: false, fin: last });
        if (last) break;
      }
      return undefined;
    }
    if (s.startsWith('cmd:ping:')) {
      const payload = s.slice('cmd:ping:'.length);
      return new Promise((resolve) => {
        const onPong = (d) => {
          if (d.toString('utf8') === payload) {
            ws.off('pong', onPong);
            ws.send('pong-ok:' + payload);
            resolve();
          }
        };
        ws.on('pong', onPong);
        ws.once('close', resolve);
        ws.ping(Buffer.from(payload));
      });
    }
  }
  ws.send(data, { binary: isBinary });
  return undefined;
}

function serve(port, cert, key) {
  const opts = { maxPayload: MAX, perMessageDeflate: false };
  let wss;
  if (cert) {
    const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
    wss = new WebSocketServer({ server, ...opts });
    server.listen(port, '127.0.0.1');
  } else {
    wss = new WebSocketServer({ host: '127.0.0.1', port, ...opts });
  }
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    // Messages are handled one after another (a ping command holds the queue until its
    // pong is back), so a later cmd:close cannot overtake an earlier command's reply.
    let queue = Promise.resolve();
    ws.on('message', (data, isBinary) => {
      queue = queue.then(() => handle(ws, data, isBinary)).catch(() => {});
    });
  });
  process.stderr.write(`node_peer: listening on 127.0.0.1:${port}${cert ? ' (TLS)' : ''}\n`);
}

// ------------------------------------------------------------------ client

function open(url, cafile) {
  const opts = { maxPayload: MAX, perMessageDeflate: false };
  if (cafile) opts.ca = fs.readFileSync(cafile);
  const ws = new WebSocket(url, opts);
  const queue = [];
  const waiters = [];
  let closed = null;
  const closeWaiters = [];
  const push = (item) => (waiters.length ? waiters.shift()(item) : queue.push(item));
  ws.on('message', (data, isBinary) => push({ data, isBinary }));
  ws.on('error', (e) => push({ error: e }));
  ws.on('close', (code, reason) => {
    closed = { code, reason: reason.toString('utf8') };
    closeWaiters.splice(0).forEach((f) => f(closed));
    push({ error: new Error(`closed ${code}`) });
  });
  const conn = {
    ws,
    recv: () => new Promise((resolve, reject) => {
      const take = (item) => (item.error ? reject(item.error) : resolve(item));
      if (queue.length) take(queue.shift()); else waiters.push(take);
    }),
    closedP: () => new Promise((resolve) => (closed ? resolve(closed) : closeWaiters.push(resolve))),
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(conn));
    ws.once('error', reject);
  });
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function echoOne(c, data, binary) {
  c.ws.send(data, { binary });
  const m = await c.recv();
  check(m.isBinary === binary, `type ${m.isBinary ? 'binary' : 'text'}, sent ${binary ? 'binary' : 'text'}`);
  return m.data;
}

function withTimeout(p, ms) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error('timeout')), ms); })])
    .finally(() => clearTimeout(t));
}

async function client(url, cafile, reasonEcho, label) {
  let passed = 0;
  let failed = 0;
  const run = async (name, fn) => {
    try {
      await withTimeout(fn(), TIMEOUT_MS);
      passed++;
      console.log(`ok   ${label} ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${label} ${name}: ${e && e.message}`);
    }
  };
  const c = await open(url, cafile);
  await run('text', async () => {
    for (const s of ['hello wscope', 'unicode: ✓ é ж 漢 😀', '']) {
      const got = (await echoOne(c, s, false)).toString('utf8');
      check(got === s, `echo ${JSON.stringify(got)} != ${JSON.stringify(s)}`);
    }
  });
  await run('binary', async () => {
    for (const d of [pattern(1000, 'bin'), Buffer.alloc(0), Buffer.from(Array.from({ length: 76800 }, (_, i) => i & 255))]) {
      const got = await echoOne(c, d, true);
      check(Buffer.compare(got, d) === 0, `binary echo of ${d.length} bytes differs`);
    }
  });
  await run('fragmented-text', async () => {
    const parts = ['frag-one|', 'frag-two ✓|', 'frag-three'];
    parts.forEach((p, i) => c.ws.send(p, { binary: false, fin: i === parts.length - 1 }));
    const m = await c.recv();
    check(!m.isBinary && m.data.toString('utf8') === parts.join(''), `got ${m.data}`);
  });
  await run('fragmented-binary', async () => {
    const parts = [0, 1, 2, 3].map((i) => pattern(70000, `fb${i}`));
    parts.forEach((p, i) => c.ws.send(p, { binary: true, fin: i === parts.length - 1 }));
    const m = await c.recv();
    check(m.isBinary && Buffer.compare(m.data, Buffer.concat(parts)) === 0, 'fragmented binary echo differs');
  });
  await run('pipelined-200', async () => {
    const msgs = Array.from({ length: 200 }, (_, i) => (i % 2 ? `msg ${i}` : pattern(100 + i, `p${i}`)));
    msgs.forEach((m) => c.ws.send(m, { binary: typeof m !== 'string' }));
    for (let i = 0; i < msgs.length; i++) {
      const got = await c.recv();
      const m = msgs[i];
      const same = typeof m === 'string' ? !got.isBinary && got.data.toString('utf8') === m
        : got.isBinary && Buffer.compare(got.data, m) === 0;
      check(same, `message ${i} out of order or changed`);
    }
  });
  await run('ping-pong', async () => {
    for (const p of [Buffer.from('interop-ping'), Buffer.alloc(0), pattern(125, 'ping')]) {
      const pong = new Promise((resolve) => c.ws.once('pong', resolve));
      c.ws.ping(p);
      const d = await pong;
      check(Buffer.compare(d, p) === 0, `pong payload ${d.toString('hex')} != ${p.toString('hex')}`);
    }
  });
  await run('16MiB-binary-sha256', async () => {
    const d = pattern(16 << 20, 'big');
    const got = await echoOne(c, d, true);
    check(sha256(got) === sha256(d), `sha256 ${sha256(got)} != ${sha256(d)} (${got.length} bytes)`);
  });
  await run('4MiB-text-sha256', async () => {
    const s = bigText(4 << 20);
    const got = await echoOne(c, s, false);
    check(sha256(got) === sha256(Buffer.from(s)), 'sha256 differs');
  });
  await run('close-4000-with-reason', async () => {
    const reason = 'interop bye ✓';
    c.ws.close(4000, reason);
    const cl = await c.closedP();
    check(cl.code === 4000, `close code ${cl.code}, expected 4000`);
    const want = reasonEcho ? reason : '';
    check(cl.reason === want, `close reason ${JSON.stringify(cl.reason)}, expected ${JSON.stringify(want)}`);
  });
  await run('close-1001-no-reason', async () => {
    const c2 = await open(url, cafile);
    const got = await echoOne(c2, Buffer.from([0, 1]), true);
    check(Buffer.compare(got, Buffer.from([0, 1])) === 0, 'echo');
    c2.ws.close(1001);
    const cl = await c2.closedP();
    check(cl.code === 1001 && cl.reason === '', `close ${JSON.stringify(cl)}, expected 1001 ''`);
  });
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === 'serve') {
    serve(parseInt(argv[1], 10), arg(argv, '--cert'), arg(argv, '--key'));
    return;
  }
  if (argv[0] === 'client') {
    const code = await client(argv[1], arg(argv, '--cafile'), argv.includes('--close-reason-echo'),
      arg(argv, '--label') || 'node-client');
    process.exit(code);
  }
  console.error('usage: node node_peer.js serve PORT [--cert F --key F] | client URL [--cafile F] [--close-reason-echo] [--label L]');
  process.exit(2);
}

main().catch((e) => {
  console.error(`node_peer: ${e && e.stack}`);
  process.exit(1);
});
