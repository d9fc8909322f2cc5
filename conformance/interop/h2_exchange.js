// WebSocket over HTTP/2 (RFC 8441) between Node's own http2 server and client, for the passive
// check (h2_capture.py): the server offers SETTINGS_ENABLE_CONNECT_PROTOCOL and answers an
// extended CONNECT (`:protocol: websocket`) with 200; WebSocket framing is done here by hand
// (RFC 6455 §5: masked client frames). One HTTP/2 connection carries STREAMS WebSocket
// streams at once; on each the client sends a text message, a 100 KiB binary message (many
// DATA frames), and a text message in three fragments with a ping between them; the server
// greets first and echoes every data message; then close 1000 both ways and END_STREAM.
//
// Usage: node [--tls-keylog=KEYS] h2_exchange.js PORT h2c|tls [CERT KEY]
// Prints {"streams": {"/ws/N": {"client": [[op, len, sha256], ...], "server": [...]}}}.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http2 = require('http2');
const { frame, frameReader } = require('./ws_frames');

const [port, mode, certPath, keyPath] = process.argv.slice(2);
const STREAMS = 3;
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

// Messages of a frame stream: onMessage(op, data) for data messages, onControl(op, payload).
function messages(onMessage, onControl) {
  let op0 = 0;
  let parts = [];
  return frameReader(null, ({ fin, opcode: op, payload }) => {
    if (op >= 8) return onControl(op, payload);
    if (op !== 0) op0 = op;
    parts.push(payload);
    if (fin) {
      onMessage(op0, Buffer.concat(parts));
      parts = [];
    }
  });
}

const record = {};
const rec = (path, side, op, data) => {
  record[path] = record[path] || { client: [], server: [] };
  record[path][side].push([op, data.length, sha(data)]);
};

const settings = { enableConnectProtocol: true };
const server = mode === 'tls'
  ? http2.createSecureServer({ key: fs.readFileSync(keyPath), cert: fs.readFileSync(certPath), settings })
  : http2.createServer({ settings });

server.on('stream', (stream, headers) => {
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
    stream.respond({ ':status': 400 });
    stream.end();
    return;
  }
  const path = headers[':path'];
  stream.respond({ ':status': 200 });
  const hello = Buffer.from(`hello from the node server on ${path}`);
  stream.write(frame(1, hello, { fin: true, mask: false }));
  rec(path, 'server', 1, hello);
  stream.on('data', messages(
    (op, data) => {
      stream.write(frame(op, data, { fin: true, mask: false }));
      rec(path, 'server', op, data);
    },
    (op, payload) => {
      if (op === 8) {
        stream.end(frame(8, payload.subarray(0, 2), { fin: true, mask: false }));
      } else if (op === 9) {
        stream.write(frame(10, payload, { fin: true, mask: false }));
      }
    },
  ));
  stream.on('error', () => {});
});

server.listen(Number(port), '127.0.0.1', () => {
  const url = `${mode === 'tls' ? 'https' : 'http'}://127.0.0.1:${port}`;
  const session = http2.connect(url, mode === 'tls' ? { rejectUnauthorized: false, servername: 'example.test' } : {});
  session.once('remoteSettings', () => {
    let open = STREAMS;
    for (let n = 1; n <= STREAMS; n++) {
      const path = `/ws/${n}`;
      const stream = session.request({
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': mode === 'tls' ? 'https' : 'http',
        ':path': path,
        ':authority': 'example.test',
        'sec-websocket-version': '13',
      });
      let got = 0;
      const expected = 4; // hello + three echoes
      stream.on('response', (h) => {
        if (h[':status'] !== 200) throw new Error(`status ${h[':status']}`);
        const text = Buffer.from(`hello from node client stream ${n}`);
        const bin = Buffer.alloc(100 * 1024, n);
        for (let i = 0; i < bin.length; i++) bin[i] = (i * 7 + n) & 0xff;
        stream.write(frame(1, text, { fin: true, mask: true }));
        rec(path, 'client', 1, text);
        stream.write(frame(2, bin, { fin: true, mask: true }));
        rec(path, 'client', 2, bin);
        stream.write(frame(1, Buffer.from('frag'), { fin: false, mask: true }));
        stream.write(frame(9, Buffer.from('between'), { fin: true, mask: true }));
        stream.write(frame(0, Buffer.from('men'), { fin: false, mask: true }));
        stream.write(frame(0, Buffer.from('ted'), { fin: true, mask: true }));
        rec(path, 'client', 1, Buffer.from('fragmented'));
      });
      stream.on('data', messages(
        () => {
          got += 1;
          if (got === expected) stream.write(frame(8, Buffer.from([0x03, 0xe8]), { fin: true, mask: true }));
        },
        (op) => {
          if (op === 8) stream.end();
        },
      ));
      stream.on('close', () => {
        open -= 1;
        if (open === 0) {
          session.close(() => server.close(() => {
            process.stdout.write(JSON.stringify({ streams: record }) + '\n');
          }));
        }
      });
      stream.on('error', (e) => { throw e; });
    }
  });
});
