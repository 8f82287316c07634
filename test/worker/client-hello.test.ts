import { createServer, type Server } from 'node:net';
import { connect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { MAX_HELLO_BYTES, readClientHello } from '../../src/worker/egress/client-hello.js';

/** The first bytes a real TLS client (Node's, OpenSSL) sends, with or without a server name. */
async function helloOf(servername: string | undefined): Promise<Buffer> {
  let server: Server | null = null;
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      server = createServer((socket) => {
        let data = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          data = Buffer.concat([data, chunk]);
          if (readClientHello(data).kind !== 'more' || data.length > MAX_HELLO_BYTES) {
            resolve(data);
            socket.destroy();
          }
        });
      });
      server.listen(0, '127.0.0.1', () => {
        const port = (server?.address() as { port: number }).port;
        const client = connect({ host: '127.0.0.1', port, ...(servername !== undefined ? { servername } : {}), rejectUnauthorized: false });
        client.on('error', () => {});
        setTimeout(() => reject(new Error('no hello')), 5000).unref();
      });
    });
  } finally {
    (server as Server | null)?.close();
  }
}

describe('the server name of a TLS ClientHello', () => {
  it("reads a real client's SNI, lowercase, and says when there is none", async () => {
    expect(readClientHello(await helloOf('Registry.Example.TEST'))).toEqual({ kind: 'hello', name: 'registry.example.test' });
    // Node sends no SNI for an address.
    expect(readClientHello(await helloOf(undefined))).toEqual({ kind: 'hello', name: null });
  });

  it('asks for more while the record is incomplete, and tells another protocol from TLS', async () => {
    const hello = await helloOf('a.example.test');
    for (const cut of [0, 1, 4, 5, 40, hello.length - 1]) expect(readClientHello(hello.subarray(0, cut))).toEqual({ kind: 'more' });
    expect(readClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).toEqual({ kind: 'not-tls' });
    expect(readClientHello(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'))).toEqual({ kind: 'not-tls' });
    // A handshake record that is not a ClientHello.
    const other = Buffer.from(hello);
    other[5] = 0x02;
    expect(readClientHello(other)).toEqual({ kind: 'not-tls' });
  });

  it('never reads past the record: lengths that lie are not TLS', async () => {
    const hello = Buffer.from(await helloOf('b.example.test'));
    // The cipher-suites length claims more than the record holds.
    const lying = Buffer.from(hello);
    lying.writeUInt16BE(0xfff0, 5 + 4 + 2 + 32 + 1 + (lying[5 + 4 + 2 + 32] as number));
    expect(readClientHello(lying)).toEqual({ kind: 'not-tls' });
    // A record longer than a ClientHello may be, never completed.
    const huge = Buffer.alloc(MAX_HELLO_BYTES);
    huge.set([0x16, 0x03, 0x01, 0xff, 0xff, 0x01]);
    expect(readClientHello(huge)).toEqual({ kind: 'not-tls' });
  });
});
