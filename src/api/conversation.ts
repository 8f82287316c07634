import { z } from 'zod';
import { timestamp } from './common.js';

/** The spec's ActionCategory and ActionState (we write `command`, and `completed` or `failed`). */
export const ACTION_CATEGORIES = ['command', 'files', 'search', 'integration', 'documents', 'computer', 'review', 'skill'] as const;
export const ACTION_STATES = ['running', 'completed', 'failed', 'denied'] as const;

const messageId = z.string().exactOptional();

export const textBlockSchema = z.object({ type: z.literal('text'), text: z.string(), message_id: messageId });

/** A tool call or a setup command; `input` is the tool's input as the harness reported it (an object, as a rule). */
export const actionBlockSchema = z.object({
  type: z.literal('action'),
  id: z.string(),
  category: z.enum(ACTION_CATEGORIES),
  name: z.string(),
  input: z.unknown(),
  message_id: messageId,
});

export const actionResultBlockSchema = z.object({
  type: z.literal('action_result'),
  action_id: z.string(),
  category: z.enum(ACTION_CATEGORIES),
  name: z.string(),
  state: z.enum(ACTION_STATES),
  output: z.record(z.string(), z.unknown()),
  message_id: messageId,
});

/** Anything else the run recorded (state changes, output, notices, usage): the event's type and its data. */
export const eventBlockSchema = z.object({ type: z.literal('event'), name: z.string(), data: z.record(z.string(), z.unknown()), message_id: messageId });

export const contentBlockSchema = z.discriminatedUnion('type', [textBlockSchema, actionBlockSchema, actionResultBlockSchema, eventBlockSchema]);

export const conversationMessageSchema = z.object({
  role: z.enum(['user', 'assistant', 'tool', 'system']),
  timestamp,
  message_ids: z.array(z.string()),
  content: z.array(contentBlockSchema),
});

/** The spec's ConversationStep. Oz projects one root step per run, so `steps` (nested delegated work) is empty. */
export const conversationStepSchema = z
  .object({
    id: z.string(),
    description: z.string(),
    started_at: timestamp,
    completed_at: timestamp,
    messages: z.array(conversationMessageSchema),
    get steps() {
      return z.array(conversationStepSchema);
    },
    summary: z.string().exactOptional(),
  })
  .meta({ id: 'ConversationStep' });

export const conversationResponseSchema = z
  .object({ conversation_id: z.string(), steps: z.array(conversationStepSchema) })
  .meta({ id: 'ConversationResponse', description: "the spec's ConversationResponse, projected from the run's events; its id is the run id" });

export type ContentBlock = z.infer<typeof contentBlockSchema>;
export type ConversationMessage = z.infer<typeof conversationMessageSchema>;
export type ConversationStep = z.infer<typeof conversationStepSchema>;
export type ConversationResponse = z.infer<typeof conversationResponseSchema>;
