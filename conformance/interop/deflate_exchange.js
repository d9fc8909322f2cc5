// One compressed exchange between a Node `ws` client and a Node `ws` server, for the passive
// permessage-deflate check (deflate_capture.py records it on loopback and runs
// `wscope inspect` on the capture).
//
// Usage: node deflate_exchange.js PORT SNCT CNCT SBITS CBITS
//   SNCT/CNCT: 0 or 1 (server_/client_no_context_takeover); SBITS/CBITS: 9..15 or "-" (unset).
//
// The server sends 12 messages, the client 12 (texts and a few binary ones, all compressible,
// `threshold: 0` so every one is compressed), then the client closes. Prints one JSON line:
// {"negotiated": "...", "client": [[opcode, len, sha256], ...], "server": [...]}, the messages
// each side sent, in order.

'use strict';

const crypto = require('crypto');
const WebSocket = require('ws');

function messages(side) {
  const out = [];
  for (let i = 0; i < 12; i++) {
    if (i % 3 === 2) {
      const b = Buffer.alloc(3000);
      for (let k = 0; k < b.length; k++) b[k] = (i * 7 + k) % 251;
      out.push(Buffer.concat([b, b, b, b]));
    } else {
      out.push(`${side} message ${i}: ` + 'node ws compresses these words '.repeat(5 + i));
    }
  }
  return out;
}

function digest(m) {
  const data = typeof m === 'string' ? Buffer.from(m) : m;
  return [typeof m === 'string' ? 1 : 2, data.length,
    crypto.createHash('sha256').update(data).digest('hex')];
}

const [port, snct, cnct, sbits, cbits] = process.argv.slice(2);
const opts = {
  threshold: 0,
  serverNoContextTakeover: snct === '1',
  clientNoContextTakeover: cnct === '1',
};
if (sbits !== '-') opts.serverMaxWindowBits = Number(sbits);
if (cbits !== '-') opts.clientMaxWindowBits = Number(cbits);

const sent = { client: [], server: [], negotiated: '' };
const wss = new WebSocket.Server({ host: '127.0.0.1', port: Number(port), perMessageDeflate: opts });
wss.on('headers', (headers) => {
  const h = headers.find((x) => x.toLowerCase().startsWith('sec-websocket-extensions'));
  if (h) sent.negotiated = h.split(': ').slice(1).join(': ');
});
wss.on('connection', (ws) => {
  for (const m of messages('server')) {
    ws.send(m, { binary: typeof m !== 'string' });
    sent.server.push(digest(m));
  }
});
wss.on('listening', () => {
  // The client offers client_max_window_bits (ws does by default) and asks for nothing else:
  // the server's configuration decides the parameters.
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { threshold: 0 } });
  let received = 0;
  const serverCount = messages('server').length;
  ws.on('open', () => {
    for (const m of messages('client')) {
      ws.send(m, { binary: typeof m !== 'string' });
      sent.client.push(digest(m));
    }
  });
  ws.on('message', () => {
    received += 1;
    if (received === serverCount) ws.close(1000, 'done');
  });
  ws.on('close', () => {
    wss.close(() => {
      console.log(JSON.stringify(sent));
      process.exit(0);
    });
  });
  ws.on('error', (e) => {
    console.error(`deflate_exchange: ${e}`);
    process.exit(1);
  });
});
