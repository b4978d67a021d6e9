// Temporal's remote codec protocol, so the Web UI (started with --ui-codec-endpoint) can show an
// operator the decrypted inputs and results: POST /codec/decode and /codec/encode with
// {payloads:[{metadata, data}]} in base64. CORS admits only the UI's origins; with
// CODEC_AUTH_TOKEN set, a matching bearer token is required too (the UI passes the user's token).
// Without it only a direct caller on this machine decodes, and never in production.
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import cors from 'cors';
import type { Payload } from '@temporalio/common';
import { HttpError, type AppDeps } from './http';
import { AesGcmPayloadCodec } from '../support/codec';
import { safeEqual } from '../domain/safeEqual';

interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

function fromJson(p: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]),
    ),
    data: p.data ? Buffer.from(p.data, 'base64') : undefined,
  };
}

function toJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: p.data ? Buffer.from(p.data).toString('base64') : null,
  };
}

/** Headers a reverse proxy adds: behind one on this host, every caller's socket is loopback. */
const PROXY_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-forwarded-host'];

/** The socket's own peer (not req.ip, which TRUST_PROXY may take from a header) is this machine. */
function directLocalCaller(req: Request): boolean {
  const peer = req.socket.remoteAddress ?? '';
  const loopback = /^(::ffff:)?127\./.test(peer) || peer === '::1';
  return loopback && !PROXY_HEADERS.some((h) => req.headers[h] !== undefined);
}

export function codecRoutes({ config }: AppDeps): Router {
  const router = Router();
  const codec = new AesGcmPayloadCodec(config.encryption);
  const allowUi = cors({
    origin: config.codec.corsOrigins,
    methods: ['POST'],
    allowedHeaders: ['content-type', 'x-namespace', 'authorization'],
    credentials: true,
  });
  const checkBearer = (req: Request, _res: Response, next: NextFunction) => {
    const expected = config.codec.authToken;
    if (expected) {
      if (!safeEqual(req.get('authorization')?.replace(/^Bearer\s+/i, '') ?? '', expected)) {
        next(new HttpError(401, 'a valid bearer token is required to decode payloads'));
        return;
      }
    } else if (!config.codec.localWithoutToken || !directLocalCaller(req)) {
      // Without a token, only the local Web UI on this machine, talking to us straight, may decode.
      next(
        new HttpError(401, 'set CODEC_AUTH_TOKEN to decode payloads from another machine or through a proxy'),
      );
      return;
    }
    next();
  };
  router.options('/codec/:op', allowUi);
  for (const op of ['encode', 'decode'] as const) {
    router.post(`/codec/${op}`, allowUi, checkBearer, express.json({ limit: '4mb' }), async (req, res) => {
      const payloads = (req.body as { payloads?: unknown })?.payloads;
      if (!Array.isArray(payloads)) throw new HttpError(400, 'expected {"payloads": [...]}');
      try {
        const out = await codec[op](payloads.map((p) => fromJson(p as JsonPayload)));
        res.json({ payloads: out.map(toJson) });
      } catch (err) {
        throw new HttpError(400, `could not ${op}: ${(err as Error).message}`);
      }
    });
  }
  return router;
}
