import { z } from 'zod';
import type { InitReply } from './init-protocol.js';

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);

/** The replies an init may send, checked field by field (they come from the sandbox). */
const replySchema = z.discriminatedUnion('ev', [
  z.strictObject({ ev: z.literal('ready'), pid: z.number().int().positive() }),
  z.strictObject({ ev: z.literal('out'), id, stream: z.enum(['stdout', 'stderr']), data: base64 }),
  z.strictObject({
    ev: z.literal('exit'),
    id,
    code: z.number().int().min(0).max(255).nullable(),
    signal: z
      .string()
      .regex(/^SIG[A-Z0-9]{1,12}$/)
      .nullable(),
    timedOut: z.boolean(),
  }),
  z.strictObject({ ev: z.literal('written'), id }),
  z.strictObject({ ev: z.literal('signaled'), id }),
  z.strictObject({ ev: z.literal('error'), id, message: z.string().max(4096) }),
]);

/** A reply with its output already decoded. */
export type ParsedReply = Exclude<InitReply, { ev: 'out' }> | { ev: 'out'; id: number; stream: 'stdout' | 'stderr'; data: Buffer };

/** A checked reply, or null when the line is not one (the caller treats that as the sandbox lost). */
export function parseInitReply(line: string): ParsedReply | null {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return null;
  }
  const parsed = replySchema.safeParse(json);
  if (!parsed.success) return null;
  const reply = parsed.data;
  return reply.ev === 'out' ? { ...reply, data: Buffer.from(reply.data, 'base64') } : reply;
}
