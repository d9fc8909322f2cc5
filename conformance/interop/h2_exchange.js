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

const [port, mode, certPath, keyPath] = process.argv.slice(2);
const STREAMS = 3;
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

function frame(fin, op, payload, masked) {
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | op, (masked ? 0x80 : 0) | len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = (fin ? 0x80 : 0) | op;
    head[1] = (masked ? 0x80 : 0) | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | op;
    head[1] = (masked ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!masked) return Buffer.concat([head, payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, key, body]);
}

// Calls onFrame(fin, op, payload) for each whole frame of a byte stream.
function parser(onFrame) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const fin = (buf[0] & 0x80) !== 0;
      const op = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      const keyAt = at;
      if (masked) at += 4;
      if (buf.length < at + len) return;
      const payload = Buffer.from(buf.subarray(at, at + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[keyAt + (i & 3)];
      buf = buf.subarray(at + len);
      onFrame(fin, op, payload);
    }
  };
}

// Messages of a frame stream: onMessage(op, data) for data messages, onControl(op, payload).
function messages(onMessage, onControl) {
  let op0 = 0;
  let parts = [];
  return parser((fin, op, payload) => {
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
  stream.write(frame(true, 1, hello, false));
  rec(path, 'server', 1, hello);
  stream.on('data', messages(
    (op, data) => {
      stream.write(frame(true, op, data, false));
      rec(path, 'server', op, data);
    },
    (op, payload) => {
      if (op === 8) {
        stream.end(frame(true, 8, payload.subarray(0, 2), false));
      } else if (op === 9) {
        stream.write(frame(true, 10, payload, false));
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
        stream.write(frame(true, 1, text, true));
        rec(path, 'client', 1, text);
        stream.write(frame(true, 2, bin, true));
        rec(path, 'client', 2, bin);
        stream.write(frame(false, 1, Buffer.from('frag'), true));
        stream.write(frame(true, 9, Buffer.from('between'), true));
        stream.write(frame(false, 0, Buffer.from('men'), true));
        stream.write(frame(true, 0, Buffer.from('ted'), true));
        rec(path, 'client', 1, Buffer.from('fragmented'));
      });
      stream.on('data', messages(
        () => {
          got += 1;
          if (got === expected) stream.write(frame(true, 8, Buffer.from([0x03, 0xe8]), true));
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
