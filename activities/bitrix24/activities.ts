// The CRM activities the worker registers: registerLead (the partner lookup and the lead, in one
// activity) and recordCallAttempts (a lead's call notes, in order). Both are idempotent: a retry
// finds the lead it added and resumes after the last note written.
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { logger, maskPhone } from '../../support/logger';
import { activityContext } from '../http';
import {
  createBitrix24Client,
  NewId,
  Rows,
  type Bitrix24Client,
  type Bitrix24ClientOptions,
  type Bitrix24Config,
  type Params,
} from './client';

export interface Partner {
  id: number;
  title: string;
  code: string;
}
export type PartnerLookup = { status: 'found'; partner: Partner } | { status: 'not_found' };
/** What registering a lead found of its partner; lookup_failed when Bitrix24 refused the search. */
export type PartnerOutcome = PartnerLookup | { status: 'lookup_failed'; reason: string };
export interface CrmLeadInput {
  ref: string;
  name: string;
  phone: string;
  city?: string;
  timezone?: string;
  partnerCode?: string;
  site?: string;
  orderAmount?: number;
  comment?: string;
  /** Epoch ms the lead was accepted, for the intake → CRM lead histogram. */
  receivedAt?: number;
}
/** created=false when an existing lead with the same ORIGIN_ID was found. */
export interface RegisteredLead {
  leadId: number;
  created: boolean;
  partner?: PartnerOutcome;
}
export interface CallAttemptNote {
  statusId?: string;
  comment: string;
}
export interface Bitrix24Activities {
  registerLead(input: CrmLeadInput): Promise<RegisteredLead>;
  /** Several notes for one lead, in order; a retry resumes after the last one written. */
  recordCallAttempts(batch: { leadId: number; notes: CallAttemptNote[] }): Promise<void>;
}

export const ORIGINATOR_ID = 'speed-to-lead';
const log = logger.child({ component: 'bitrix24' });
const NotesDone = z.object({ notesDone: z.number().int().nonnegative() });

export function createBitrix24Activities(
  cfg: Bitrix24Config,
  opts: Bitrix24ClientOptions,
): Bitrix24Activities {
  const client = createBitrix24Client(cfg, opts);
  return {
    async registerLead(input) {
      let partner: PartnerOutcome | undefined;
      if (input.partnerCode) {
        try {
          partner = await findPartner(client, cfg, input.partnerCode);
        } catch (err) {
          // A refusal (bad token, no rights, a wrong field name) will not pass on retry: the lead
          // goes in without its partner and a person is told. Anything else is retried whole.
          if (!(err instanceof ApplicationFailure && err.nonRetryable)) throw err;
          partner = { status: 'lookup_failed', reason: err.message };
        }
      }
      const lead = await createCrmLead(
        client,
        input,
        partner?.status === 'found' ? partner.partner : undefined,
      );
      return { ...lead, partner };
    },

    async recordCallAttempts({ leadId, notes }) {
      const previous = NotesDone.safeParse(activityContext()?.info.heartbeatDetails);
      const done = previous.success ? previous.data.notesDone : 0;
      for (let i = done; i < notes.length; i++) {
        await recordNote(client, leadId, notes[i]!, { notesDone: i });
        activityContext()?.heartbeat({ notesDone: i + 1 });
      }
    },
  };
}

async function findPartner(
  client: Bitrix24Client,
  cfg: Bitrix24Config,
  code: string,
): Promise<PartnerLookup> {
  const value = code.trim();
  if (value === '') return { status: 'not_found' };
  const contact = cfg.partnerEntity === 'contact';
  const rows = await client.call(
    contact ? 'crm.contact.list' : 'crm.company.list',
    {
      filter: { [cfg.partnerField]: value },
      select: contact ? ['ID', 'NAME', 'LAST_NAME', cfg.partnerField] : ['ID', 'TITLE', cfg.partnerField],
      order: { ID: 'ASC' },
    },
    Rows,
  );
  const row = rows[0];
  if (!row) return { status: 'not_found' };
  if (rows.length > 1) log.warn({ count: rows.length }, 'several partners share one code; using the oldest');
  const title = contact
    ? [row.NAME, row.LAST_NAME].filter((p) => typeof p === 'string' && p !== '').join(' ')
    : String(row.TITLE ?? '');
  return { status: 'found', partner: { id: Number(row.ID), title, code: value } };
}

async function createCrmLead(
  client: Bitrix24Client,
  input: CrmLeadInput,
  partner: Partner | undefined,
): Promise<Omit<RegisteredLead, 'partner'>> {
  // Bitrix24 has no unique constraint, so the ref stored in ORIGIN_ID is what makes a retried
  // activity (e.g. one that timed out after the add went through) find its lead instead of adding
  // a second one.
  const existing = await client.call(
    'crm.lead.list',
    { filter: { ORIGINATOR_ID, ORIGIN_ID: input.ref }, select: ['ID'], order: { ID: 'ASC' } },
    Rows,
  );
  const found = existing[0];
  if (found) return { leadId: Number(found.ID), created: false };
  const phone = input.phone.replace(/\D/g, '');
  const leadId = await client.call(
    'crm.lead.add',
    {
      fields: {
        TITLE: `Заявка с сайта: ${input.name}`,
        NAME: input.name,
        PHONE: [{ VALUE: `+${phone}`, VALUE_TYPE: 'WORK' }],
        ADDRESS_CITY: input.city,
        SOURCE_ID: 'WEB',
        SOURCE_DESCRIPTION: input.site,
        UTM_SOURCE: input.partnerCode,
        COMPANY_ID: partner?.id,
        OPPORTUNITY: input.orderAmount,
        CURRENCY_ID: 'RUB',
        COMMENTS: input.comment,
        ORIGINATOR_ID,
        ORIGIN_ID: input.ref,
      },
      params: { REGISTER_SONET_EVENT: 'Y' },
    },
    NewId,
  );
  log.info({ leadId, phone: maskPhone(phone) }, 'bitrix24 lead created');
  return { leadId, created: true };
}

async function recordNote(client: Bitrix24Client, leadId: number, note: CallAttemptNote, progress: Params) {
  // The status update is idempotent and the comment is not: doing the update first means a retry
  // after a failed update cannot leave a duplicate comment behind.
  if (note.statusId) {
    await client.call(
      'crm.lead.update',
      { id: leadId, fields: { STATUS_ID: note.statusId } },
      z.boolean(),
      progress,
    );
  }
  await client.call(
    'crm.timeline.comment.add',
    { fields: { ENTITY_ID: leadId, ENTITY_TYPE: 'lead', COMMENT: note.comment } },
    NewId,
    progress,
  );
}
