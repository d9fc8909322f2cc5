// WebSocket over HTTP/2 (RFC 8441) peer on Node's own `http2` module (no npm package): an
// independent HTTP/2 implementation for scripts/interop-h2.sh. The WebSocket framing (RFC 6455
// section 5) is done here by hand, small and strict.
//
//   node h2_peer.js server PORT [--tls CERT KEY]
//       Echo server: SETTINGS_ENABLE_CONNECT_PROTOCOL, accepts CONNECT :protocol websocket
//       with sec-websocket-version 13 (200), echoes text/binary messages (reassembling
//       fragments), answers pings, answers a close with the same code and ends the stream.
//       Prints "listening PORT" when ready.
//   node h2_peer.js client PORT [--tls CA]
//       Opens STREAMS WebSockets on one connection to our server, each: text, a fragmented
//       text with a ping between the fragments, a 100 KiB binary message; checks every echo
//       and the pong, closes with 1000 and checks the close reply and the end of the stream.
//       Then checks the refusals: :protocol other than websocket (501), no
//       sec-websocket-version (400). Exits 0 when everything matched.
'use strict';

const http2 = require('http2');
const fs = require('fs');
const crypto = require('crypto');
const { frame, frameReader } = require('./ws_frames');

const STREAMS = 5;

function server(port, tls) {
  const settings = { enableConnectProtocol: true };
  const srv = tls
    ? http2.createSecureServer({ key: fs.readFileSync(tls.key), cert: fs.readFileSync(tls.cert), settings })
    : http2.createServer({ settings });
  srv.on('stream', (stream, headers) => {
    if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
      stream.respond({ ':status': headers[':protocol'] ? 501 : 400 }, { endStream: true });
      return;
    }
    if (headers['sec-websocket-version'] !== '13') {
      stream.respond({ ':status': 400, 'sec-websocket-version': '13' }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 200 });
    let message = null;
    let closed = false;
    const fail = (why) => {
      console.error(`server: ${why}`);
      stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
    };
    stream.on('data', frameReader(true, ({ fin, opcode, payload }) => {
      if (closed) return;
      if (opcode === 0x9) return stream.write(frame(0xa, payload));
      if (opcode === 0xa) return;
      if (opcode === 0x8) {
        closed = true;
        stream.end(frame(0x8, payload.subarray(0, 2)));
        return;
      }
      if (opcode === 0x1 || opcode === 0x2) {
        if (message) return fail('new message inside a fragmented one');
        message = { opcode, parts: [payload] };
      } else if (opcode === 0x0) {
        if (!message) return fail('continuation without a message');
        message.parts.push(payload);
      } else {
        return fail(`opcode ${opcode}`);
      }
      if (fin) {
        stream.write(frame(message.opcode, Buffer.concat(message.parts)));
        message = null;
      }
    }, fail));
    stream.on('error', () => {});
  });
  srv.listen(port, '127.0.0.1', () => console.log(`listening ${srv.address().port}`));
}

/// Opens one WebSocket stream and runs the exchange; resolves when all matched.
function exchange(session, authority, scheme, index) {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': scheme,
      ':path': `/node/${index}`,
      ':authority': authority,
      'sec-websocket-version': '13',
    }, { endStream: false });
    const big = crypto.randomBytes(100 * 1024);
    const expected = [
      { opcode: 0x1, payload: Buffer.from(`node stream ${index}: héllo`) },
      { opcode: 0xa, payload: Buffer.from('between') },
      { opcode: 0x1, payload: Buffer.from(`fragmented ${index}`) },
      { opcode: 0x2, payload: big },
      { opcode: 0x8, payload: Buffer.from([0x03, 0xe8]) },
    ];
    let message = null;
    const timer = setTimeout(() => reject(new Error(`stream ${index}: timed out`)), 20000);
    stream.on('response', (headers) => {
      if (headers[':status'] !== 200) return reject(new Error(`stream ${index}: status ${headers[':status']}`));
      stream.write(frame(0x1, expected[0].payload, { mask: true }));
      stream.write(frame(0x1, Buffer.from('fragmented '), { fin: false, mask: true }));
      stream.write(frame(0x9, Buffer.from('between'), { mask: true }));
      stream.write(frame(0x0, Buffer.from(`${index}`), { mask: true }));
      stream.write(frame(0x2, big, { mask: true }));
      stream.write(frame(0x8, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')]), { mask: true }));
    });
    stream.on('data', frameReader(false, ({ fin, opcode, payload }) => {
      let got;
      if (opcode === 0x0 || !fin) {
        message = message || { opcode, parts: [] };
        message.parts.push(payload);
        if (!fin) return;
        got = { opcode: message.opcode, payload: Buffer.concat(message.parts) };
        message = null;
      } else {
        got = { opcode, payload };
      }
      const want = expected.shift();
      if (!want || want.opcode !== got.opcode || !want.payload.equals(got.payload)) {
        reject(new Error(`stream ${index}: got opcode ${got.opcode} (${got.payload.length} bytes), want ${want && want.opcode}`));
      }
      if (opcode === 0x8) stream.end();
    }, (why) => reject(new Error(`stream ${index}: ${why}`))));
    stream.on('end', () => {
      clearTimeout(timer);
      if (expected.length) reject(new Error(`stream ${index}: ended with ${expected.length} frame(s) missing`));
      else resolve();
    });
    stream.on('error', (e) => reject(e));
  });
}

/// A request that must be refused with `status`.
function refused(session, headers, status) {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: false });
    stream.on('response', (h) => {
      if (h[':status'] !== status) reject(new Error(`${JSON.stringify(headers)}: status ${h[':status']}, want ${status}`));
      else resolve();
      stream.close();
    });
    stream.on('error', () => {});
  });
}

function client(port, tls) {
  const scheme = tls ? 'https' : 'http';
  const authority = `localhost:${port}`;
  const session = http2.connect(`${scheme}://${authority}`, tls ? { ca: fs.readFileSync(tls.ca) } : {});
  session.on('error', (e) => { console.error(`client: ${e}`); process.exit(1); });
  session.once('remoteSettings', async (settings) => {
    try {
      if (!settings.enableConnectProtocol) throw new Error('server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL');
      const all = [];
      for (let i = 0; i < STREAMS; i++) all.push(exchange(session, authority, scheme, i));
      await Promise.all(all);
      const base = { ':method': 'CONNECT', ':scheme': scheme, ':path': '/', ':authority': authority };
      await refused(session, { ...base, ':protocol': 'connect-udp', 'sec-websocket-version': '13' }, 501);
      await refused(session, { ...base, ':protocol': 'websocket' }, 400);
      await refused(session, { ...base, ':protocol': 'websocket', 'sec-websocket-version': '8' }, 400);
      console.log(`ok: ${STREAMS} WebSocket streams on one HTTP/2 connection, refusals 501/400/400`);
      session.close();
    } catch (e) {
      console.error(`client: ${e.message}`);
      process.exit(1);
    }
  });
}

const [mode, portArg, ...rest] = process.argv.slice(2);
const port = Number(portArg);
const tlsAt = rest.indexOf('--tls');
if (mode === 'server') {
  server(port, tlsAt >= 0 ? { cert: rest[tlsAt + 1], key: rest[tlsAt + 2] } : null);
} else if (mode === 'client') {
  client(port, tlsAt >= 0 ? { ca: rest[tlsAt + 1] } : null);
} else {
  console.error('usage: node h2_peer.js server PORT [--tls CERT KEY] | client PORT [--tls CA]');
  process.exit(2);
}
