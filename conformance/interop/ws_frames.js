// WebSocket framing (RFC 6455 section 5) for the HTTP/2 test peers (h2_peer.js,
// h2_exchange.js), which carry WebSocket frames in HTTP/2 DATA by hand: Node's `ws` does not
// speak RFC 8441.
'use strict';

const crypto = require('crypto');

/// One WebSocket frame: FIN + opcode, masked with a random key when `mask`.
function frame(opcode, payload, { fin = true, mask = false } = {}) {
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | opcode, (mask ? 0x80 : 0) | len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = (mask ? 0x80 : 0) | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = (mask ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!mask) return Buffer.concat([head, payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, key, body]);
}

/// Reads frames from a byte stream: calls onFrame({fin, opcode, payload}) per frame.
/// `expectMasked`: what the peer's role requires (RFC 6455 section 5.1), or null for either.
function frameReader(expectMasked, onFrame, onError) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const fin = (buf[0] & 0x80) !== 0;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      if (expectMasked !== null && masked !== expectMasked) return onError(`frame masked=${masked}`);
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      const keyLen = masked ? 4 : 0;
      if (buf.length < off + keyLen + len) return;
      const payload = Buffer.from(buf.subarray(off + keyLen, off + keyLen + len));
      if (masked) {
        const key = buf.subarray(off, off + 4);
        for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      }
      buf = buf.subarray(off + keyLen + len);
      onFrame({ fin, opcode, payload });
    }
  };
}

module.exports = { frame, frameReader };
