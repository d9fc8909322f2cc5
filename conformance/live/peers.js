// Node `ws` peers for the live capture test (scripts/live.sh). `ws` comes from
// conformance/interop/node_modules (NODE_PATH), installed with `npm ci` by the script.
//
//   node peers.js serve HOST PORT   echo server, permessage-deflate accepted
//   node peers.js client URL        scripted conversation: text, a compressed text, a text
//                                   message in two fragments with a ping between them, binary;
//                                   every echo checked; close 1000 "node done"
//
// A wss:// URL is opened without verifying the server's certificate (the test's self-signed
// one); `node --tls-keylog=FILE` appends the TLS secrets to FILE.
'use strict';

const WebSocket = require('ws');

function serve(host, port) {
  const wss = new WebSocket.Server({ host, port, perMessageDeflate: true });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
}

function client(url) {
  const ws = new WebSocket(url, { perMessageDeflate: true, rejectUnauthorized: false });
  const big = 'compress me, compress me '.repeat(400);
  const expected = ['hello from node', big, 'first fragment|second fragment', 'bin'];
  let got = 0;
  ws.on('open', () => {
    ws.send('hello from node');
    ws.send(big, { compress: true });
    // RFC 6455 section 5.4: a control frame between the fragments of a message.
    ws.send('first fragment|', { fin: false, compress: false });
    ws.ping('between fragments');
    ws.send('second fragment', { fin: true, compress: false });
    ws.send(Buffer.from('bin'), { binary: true });
  });
  ws.on('message', (data) => {
    const want = expected[got++];
    if (data.toString() !== want) {
      console.error(`node client: echo ${got} mismatch`);
      process.exit(1);
    }
    if (got === expected.length) ws.close(1000, 'node done');
  });
  ws.on('close', (code) => process.exit(code === 1000 && got === expected.length ? 0 : 1));
  ws.on('error', (e) => {
    console.error(`node client: ${e.message}`);
    process.exit(1);
  });
}

const [cmd, a, b] = process.argv.slice(2);
if (cmd === 'serve') serve(a, parseInt(b, 10));
else if (cmd === 'client') client(a);
else {
  console.error('usage: node peers.js serve HOST PORT | client URL');
  process.exit(2);
}
