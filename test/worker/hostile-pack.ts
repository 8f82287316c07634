/**
 * Hand-made hostile git data for the host-side git tests: a pack whose one
 * delta declares a result of gigabytes (the "180-byte pack" of issue 16),
 * written with its index so that the serving side never resolves it, as a
 * bare repository (a hostile remote) or as a bundle (a run's changes). Only
 * the receiving git, which must resolve every delta, pays for it. Nothing
 * here ever inflates the bomb: object ids are hashed from a stream of zeros.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { git } from '../support/git-fixtures.js';

const BASE_SIZE = 0x10000; // One delta copy command (the byte 0x80) copies 64 KiB from offset 0.
const TYPES = { commit: 1, tree: 2, blob: 3, ofsDelta: 6 } as const;

function sha1Hex(...parts: Buffer[]): string {
  const hash = createHash('sha1');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

/** The id of a blob of `size` zero bytes, hashed without ever holding it. */
function zeroBlobId(size: number): string {
  const hash = createHash('sha1').update(`blob ${size}\0`);
  const chunk = Buffer.alloc(BASE_SIZE);
  for (let left = size; left > 0; left -= chunk.length) hash.update(left >= chunk.length ? chunk : chunk.subarray(0, left));
  return hash.digest('hex');
}

function objectId(type: 'commit' | 'tree' | 'blob', body: Buffer): string {
  return sha1Hex(Buffer.from(`${type} ${body.length}\0`), body);
}

function entryHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (type << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  do {
    let byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return Buffer.from(bytes);
}

/** The negative offset of an OFS_DELTA's base, in git's encoding. */
function ofsOffset(distance: number): Buffer {
  const bytes = [distance & 0x7f];
  let rest = Math.floor(distance / 128);
  while (rest > 0) {
    rest -= 1;
    bytes.unshift(0x80 | (rest & 0x7f));
    rest = Math.floor(rest / 128);
  }
  return Buffer.from(bytes);
}

interface Entry {
  id: string;
  offset: number;
  data: Buffer;
}

export interface HostilePack {
  pack: Buffer;
  idx: Buffer;
  commit: string;
}

const SIGNATURE = 'Mallory <mallory@example.test> 1700000000 +0000';

/**
 * A commit (with `parent`, if given) whose tree holds a 64 KiB blob of zeros
 * and a second blob stored as a delta of it declaring `resultBytes` bytes:
 * about 200 bytes of pack whatever the size.
 */
export function deltaBombPack(resultBytes: number, parent?: string): HostilePack {
  const baseId = zeroBlobId(BASE_SIZE);
  const bombId = zeroBlobId(resultBytes);
  const tree = Buffer.concat(
    [
      ['base.bin', baseId],
      ['bomb.bin', bombId],
    ].flatMap(([name, id]) => [Buffer.from(`100644 ${name}\0`), Buffer.from(id as string, 'hex')]),
  );
  const treeId = objectId('tree', tree);
  const commit = Buffer.from(`tree ${treeId}\n${parent ? `parent ${parent}\n` : ''}author ${SIGNATURE}\ncommitter ${SIGNATURE}\n\nA small present\n`);
  const commitId = objectId('commit', commit);
  const copies = Math.ceil(resultBytes / BASE_SIZE);
  if (copies * BASE_SIZE !== resultBytes) throw new Error('resultBytes must be a multiple of 64 KiB');
  const delta = Buffer.concat([varint(BASE_SIZE), varint(resultBytes), Buffer.alloc(copies, 0x80)]);

  const parts: Buffer[] = [Buffer.from('PACK'), Buffer.from([0, 0, 0, 2, 0, 0, 0, 4])];
  let offset = 12;
  const entries: Entry[] = [];
  const add = (id: string, bytes: Buffer): number => {
    entries.push({ id, offset, data: bytes });
    parts.push(bytes);
    const at = offset;
    offset += bytes.length;
    return at;
  };
  add(commitId, Buffer.concat([entryHeader(TYPES.commit, commit.length), deflateSync(commit)]));
  add(treeId, Buffer.concat([entryHeader(TYPES.tree, tree.length), deflateSync(tree)]));
  const baseAt = add(baseId, Buffer.concat([entryHeader(TYPES.blob, BASE_SIZE), deflateSync(Buffer.alloc(BASE_SIZE), { level: 9 })]));
  add(bombId, Buffer.concat([entryHeader(TYPES.ofsDelta, delta.length), ofsOffset(offset - baseAt), deflateSync(delta, { level: 9 })]));
  const body = Buffer.concat(parts);
  const packHash = createHash('sha1').update(body).digest();
  const pack = Buffer.concat([body, packHash]);

  const sorted = [...entries].sort((a, b) => a.id.localeCompare(b.id));
  const fanout = Buffer.alloc(256 * 4);
  for (let i = 0; i < 256; i++) fanout.writeUInt32BE(sorted.filter((e) => Number.parseInt(e.id.slice(0, 2), 16) <= i).length, i * 4);
  const crcs = Buffer.alloc(sorted.length * 4);
  const offsets = Buffer.alloc(sorted.length * 4);
  sorted.forEach((e, i) => {
    crcs.writeUInt32BE(crc32(e.data), i * 4);
    offsets.writeUInt32BE(e.offset, i * 4);
  });
  const idxBody = Buffer.concat([Buffer.from([0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]), fanout, ...sorted.map((e) => Buffer.from(e.id, 'hex')), crcs, offsets, packHash]);
  const idx = Buffer.concat([idxBody, createHash('sha1').update(idxBody).digest()]);
  return { pack, idx, commit: commitId };
}

/**
 * A bare repository at `<root>/<name>.git` whose `main` is a commit of
 * {@link deltaBombPack}, made without any git resolving the delta; returns its path.
 */
export function hostileRepo(root: string, name: string, resultBytes: number): string {
  const bare = join(root, `${name}.git`);
  mkdirSync(root, { recursive: true });
  git(root, 'init', '--quiet', '--bare', '--initial-branch=main', bare);
  const { pack, idx, commit } = deltaBombPack(resultBytes);
  const packName = `pack-${pack.subarray(pack.length - 20).toString('hex')}`;
  writeFileSync(join(bare, 'objects', 'pack', `${packName}.pack`), pack);
  writeFileSync(join(bare, 'objects', 'pack', `${packName}.idx`), idx);
  writeFileSync(join(bare, 'refs', 'heads', 'main'), `${commit}\n`);
  return bare;
}

/** Put a bomb commit on top of `main` of an existing bare repository (a remote that turns hostile); returns its id. */
export function addBomb(bare: string, resultBytes: number): string {
  const parent = git(bare, 'rev-parse', 'main').trim();
  const { pack, idx, commit } = deltaBombPack(resultBytes, parent);
  const packName = `pack-${pack.subarray(pack.length - 20).toString('hex')}`;
  writeFileSync(join(bare, 'objects', 'pack', `${packName}.pack`), pack);
  writeFileSync(join(bare, 'objects', 'pack', `${packName}.idx`), idx);
  writeFileSync(join(bare, 'refs', 'heads', 'main'), `${commit}\n`);
  return commit;
}

/** A v2 bundle of `refs/heads/<branch>` = a bomb commit on top of `base` (its prerequisite). */
export function hostileBundle(base: string, branch: string, resultBytes: number): Buffer {
  const { pack, commit } = deltaBombPack(resultBytes, base);
  return Buffer.concat([Buffer.from(`# v2 git bundle\n-${base} base\n${commit} refs/heads/${branch}\n\n`), pack]);
}
