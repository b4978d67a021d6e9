// Drop-in for the shop's existing PHP snippet: the Corezoid public-API envelope on a path shaped
// like Corezoid's, answered in Corezoid's shape, so a shop changes only the host in its snippet.
// The snippet posts with curl --data, i.e. JSON text under a form content type: parse the text.
import express, { Router } from 'express';
import { HttpError, type AppDeps } from './http';
import type { RawLead, StartOutcome } from './intake';
import { safeEqual } from '../domain/safeEqual';

interface CorezoidOp {
  ref?: unknown;
  type?: unknown;
  obj?: unknown;
  conv_id?: unknown;
  data?: {
    server?: Record<string, unknown>;
    cookies?: Record<string, unknown>;
    post?: Record<string, unknown>;
  };
}

type OpAnswer = { obj: 'task'; ref: string; proc: string; obj_id?: string; description?: string };

const MAX_OPS = 20;

function clientIpFrom(server: Record<string, unknown> | undefined): string | undefined {
  const forwarded =
    typeof server?.HTTP_X_FORWARDED_FOR === 'string' ? server.HTTP_X_FORWARDED_FOR : undefined;
  const ip = forwarded?.split(',')[0]?.trim() || server?.REMOTE_ADDR;
  return typeof ip === 'string' ? ip : undefined;
}

function stringRecord(value: unknown): Record<string, string | undefined> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).filter(([, v]) => typeof v === 'string') as Array<
      [string, string]
    >,
  );
}

export function corezoidRoutes(
  { config }: AppDeps,
  acceptLead: (raw: RawLead) => Promise<StartOutcome>,
): Router {
  const router = Router();
  router.post(
    '/api/1/json/public/:convId/:key',
    (req, _res, next) => {
      if (!config.corezoidPublicKey || !safeEqual(req.params.key ?? '', config.corezoidPublicKey)) {
        next(new HttpError(404, 'not found'));
        return;
      }
      next();
    },
    express.text({ type: () => true, limit: config.maxBodySize }),
    async (req, res) => {
      let envelope: { ops?: unknown };
      try {
        envelope = JSON.parse(typeof req.body === 'string' ? req.body : '') as { ops?: unknown };
      } catch {
        throw new HttpError(400, 'the body is not a JSON Corezoid envelope', { request_proc: 'error' });
      }
      if (
        !envelope ||
        !Array.isArray(envelope.ops) ||
        envelope.ops.length === 0 ||
        envelope.ops.length > MAX_OPS
      ) {
        throw new HttpError(400, `"ops" must be an array of 1 to ${MAX_OPS} operations`, {
          request_proc: 'error',
        });
      }
      const answers: OpAnswer[] = [];
      for (const op of envelope.ops as CorezoidOp[]) {
        const ref = typeof op?.ref === 'string' || typeof op?.ref === 'number' ? String(op.ref) : '';
        if (op?.type !== 'create' || op?.obj !== 'task' || !op.data || typeof op.data !== 'object') {
          answers.push({
            obj: 'task',
            ref,
            proc: 'error',
            description: 'only {type:"create", obj:"task", data} is accepted',
          });
          continue;
        }
        const post = op.data.post && typeof op.data.post === 'object' ? op.data.post : {};
        try {
          const outcome = await acceptLead({
            fields: { ...post, ...(ref ? { ref } : {}) },
            cookies: stringRecord(op.data.cookies),
            clientIp: clientIpFrom(op.data.server) ?? req.ip,
            source: 'corezoid',
            proof: 'corezoid_key',
          });
          answers.push(
            outcome.status === 'started'
              ? { obj: 'task', ref: outcome.ref, proc: 'ok', obj_id: outcome.workflowId }
              : {
                  obj: 'task',
                  ref: outcome.ref,
                  proc: 'not_unical_ref',
                  description: 'not unical ref',
                  obj_id: outcome.workflowId,
                },
          );
        } catch (err) {
          if (err instanceof HttpError && err.status === 400) {
            const details = (err.body.details as Array<{ field: string; message: string }> | undefined) ?? [];
            answers.push({
              obj: 'task',
              ref,
              proc: 'error',
              description: details.map((d) => `${d.field} ${d.message}`).join('; ') || err.message,
            });
            continue;
          }
          throw err;
        }
      }
      res.json({ request_proc: 'ok', ops: answers });
    },
  );
  return router;
}
