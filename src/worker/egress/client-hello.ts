/**
 * The server name a TLS ClientHello asks for (its SNI), read from the first
 * bytes a client sends through a CONNECT tunnel, without decrypting anything:
 * the egress proxy lets a tunnel carry TLS only to the name it was opened
 * for, so `CONNECT allowed.example:443` cannot then say "attacker.example" to
 * a host that serves both (docs/network.md). Hand-written: only the record
 * and handshake headers and the extension list are read (RFC 8446 4.1.2,
 * RFC 6066 3); no TLS library offers parsing a ClientHello it did not make.
 */
export type HelloRead =
  /** More bytes are needed. */
  | { kind: 'more' }
  /** Not a TLS handshake (another protocol in the tunnel). */
  | { kind: 'not-tls' }
  /** A ClientHello; `name` null when it names no server. */
  | { kind: 'hello'; name: string | null };

/** The most a ClientHello may take before the proxy gives up waiting (one TLS record, with post-quantum key shares). */
export const MAX_HELLO_BYTES = 16_384 + 5;

export function readClientHello(data: Buffer): HelloRead {
  if (data.length === 0) return { kind: 'more' };
  if (data[0] !== 0x16) return { kind: 'not-tls' };
  if (data.length < 5) return { kind: 'more' };
  const recordLength = data.readUInt16BE(3);
  if (data[1] !== 0x03 || recordLength < 4) return { kind: 'not-tls' };
  if (data.length < 5 + recordLength) return data.length >= MAX_HELLO_BYTES ? { kind: 'not-tls' } : { kind: 'more' };
  const hello = data.subarray(5, 5 + recordLength);
  if (hello[0] !== 0x01) return { kind: 'not-tls' };
  const bodyLength = (hello[1] as number) * 65536 + hello.readUInt16BE(2);
  // A ClientHello split over several records: judged on its first one only if that holds the extensions.
  const body = hello.subarray(4, 4 + bodyLength);
  let at = 2 + 32; // version, random
  const skip = (lengthBytes: 1 | 2): boolean => {
    if (at + lengthBytes > body.length) return false;
    const length = lengthBytes === 1 ? (body[at] as number) : body.readUInt16BE(at);
    at += lengthBytes + length;
    return at <= body.length;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return { kind: 'not-tls' }; // session id, cipher suites, compression
  if (at + 2 > body.length) return { kind: 'hello', name: null }; // no extensions
  const end = Math.min(body.length, at + 2 + body.readUInt16BE(at));
  at += 2;
  while (at + 4 <= end) {
    const type = body.readUInt16BE(at);
    const length = body.readUInt16BE(at + 2);
    const start = at + 4;
    at = start + length;
    if (at > end) return { kind: 'not-tls' };
    if (type !== 0) continue;
    // server_name: a list of (type, name); host_name is type 0.
    let p = start + 2;
    while (p + 3 <= at) {
      const nameType = body[p] as number;
      const nameLength = body.readUInt16BE(p + 1);
      const name = body.subarray(p + 3, p + 3 + nameLength);
      if (nameType === 0 && p + 3 + nameLength <= at) return { kind: 'hello', name: name.toString('latin1').toLowerCase().replace(/\.$/, '') };
      p += 3 + nameLength;
    }
    return { kind: 'hello', name: null };
  }
  return { kind: 'hello', name: null };
}
