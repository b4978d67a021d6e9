// AES-256-GCM payload codec: customers' names and phones in workflow inputs, results, signals,
// queries and memos are stored encrypted in Temporal. Each payload names the key it was sealed with,
// so keys can be rotated: new payloads use the current key, old ones still open with theirs.
import crypto from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface EncryptionKeys {
  currentKeyId: string;
  keys: Record<string, Buffer>;
}

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly keys: EncryptionKeys) {
    if (!keys.keys[keys.currentKeyId]) throw new Error(`no key with id ${keys.currentKeyId}`);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const keyId = this.keys.currentKeyId;
    const key = this.keys.keys[keyId]!;
    return payloads.map((payload) => {
      const plain = Buffer.from(encodePayloadProto(payload));
      const iv = crypto.randomBytes(IV_BYTES);
      const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          encoding: Buffer.from(ENCRYPTED_ENCODING),
          'encryption-key-id': Buffer.from(keyId),
        },
        data: sealed,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (Buffer.from(payload.metadata?.encoding ?? []).toString() !== ENCRYPTED_ENCODING) return payload;
      const keyId = Buffer.from(payload.metadata?.['encryption-key-id'] ?? []).toString();
      const key = this.keys.keys[keyId];
      if (!key) throw new Error(`payload sealed with unknown key id "${keyId}"`);
      const data = Buffer.from(payload.data ?? []);
      const iv = data.subarray(0, IV_BYTES);
      const tag = data.subarray(data.length - TAG_BYTES);
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAuthTag(tag);
      const plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return decodePayloadProto(plain);
    });
  }
}

// The sealed bytes are the payload's protobuf encoding, as in Temporal's own encryption samples,
// so metadata (the inner encoding) is protected too.

function encodePayloadProto(payload: Payload): Uint8Array {
  return temporal.api.common.v1.Payload.encode(payload).finish();
}

function decodePayloadProto(bytes: Uint8Array): Payload {
  return temporal.api.common.v1.Payload.decode(bytes);
}

/** "id1:base64key,id2:base64key" → keys; each key must be 32 bytes (AES-256). */
export function parseEncryptionKeys(text: string): Record<string, Buffer> {
  const keys: Record<string, Buffer> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const i = part.indexOf(':');
    if (i <= 0) throw new Error(`"${part.slice(0, 20)}…" is not keyId:base64key`);
    const id = part.slice(0, i);
    const key = Buffer.from(part.slice(i + 1), 'base64');
    if (key.length !== 32) throw new Error(`key "${id}" must be 32 bytes of base64 (got ${key.length})`);
    keys[id] = key;
  }
  return keys;
}
