// One wss:// exchange between a Node `ws` client and a Node `ws` server over TLS, for the
// passive TLS check (tls_capture.py records it on loopback and runs `wscope inspect --keylog`
// on the capture). Node writes its key log with `--tls-keylog=FILE` (tls_capture.py passes it).
//
// Usage: node --tls-keylog=KEYS tls_exchange.js PORT CERT KEY VERSION CIPHER DEFLATE
//   VERSION: TLSv1.2 or TLSv1.3; CIPHER: an OpenSSL suite name (TLS_AES_128_GCM_SHA256,
//   ECDHE-RSA-CHACHA20-POLY1305, ...); DEFLATE: 0 or 1 (permessage-deflate).
//
// The client sends a text, a 1 MiB binary message (many records), and a text in three
// fragments with a ping between the first two; the server sends a text and a 1 MiB message.
// Prints one JSON line: {"cipher": ..., "version": ..., "client": [[opcode, len, sha256],
// ...], "server": [...]}, the messages each side sent, in order (pings included).

'use strict';

const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const WebSocket = require('ws');

const [port, certFile, keyFile, version, cipher, deflate] = process.argv.slice(2);
const cert = fs.readFileSync(certFile);
const key = fs.readFileSync(keyFile);

function digest(op, data) {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return [op, b.length, crypto.createHash('sha256').update(b).digest('hex')];
}

function big(seed) {
  const b = Buffer.alloc(1 << 20);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + (i >> 8) + seed) & 0xff;
  return b;
}

const tlsOpts = { minVersion: version, maxVersion: version, ciphers: cipher };
const sent = { client: [], server: [], cipher: '', version: '' };
const server = https.createServer({ cert, key, ...tlsOpts });
const wss = new WebSocket.Server({ server, perMessageDeflate: deflate === '1' });
wss.on('connection', (ws) => {
  ws.send('hello from the node server');
  sent.server.push(digest(1, 'hello from the node server'));
  const b = big(5);
  ws.send(b, { binary: true });
  sent.server.push(digest(2, b));
});
server.listen(Number(port), '127.0.0.1', () => {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/`, {
    rejectUnauthorized: false,
    servername: 'example.test',
    perMessageDeflate: deflate === '1',
    ...tlsOpts,
  });
  let received = 0;
  ws.on('open', () => {
    const sock = ws._socket;
    sent.cipher = sock.getCipher().standardName;
    sent.version = sock.getProtocol();
    ws.send('hello from the node client');
    sent.client.push(digest(1, 'hello from the node client'));
    const b = big(9);
    ws.send(b, { binary: true });
    sent.client.push(digest(2, b));
    // A fragmented text with a ping between its first two fragments.
    ws.send('frag', { fin: false });
    ws.ping('between fragments');
    sent.client.push(digest(9, 'between fragments'));
    ws.send('men', { fin: false });
    ws.send('ted', { fin: true });
    sent.client.push(digest(1, 'fragmented'));
  });
  ws.on('message', () => {
    received += 1;
    if (received === 2) ws.close(1000, 'done');
  });
  ws.on('close', () => {
    wss.close();
    server.close(() => {
      console.log(JSON.stringify(sent));
      process.exit(0);
    });
    server.closeAllConnections?.();
  });
});
