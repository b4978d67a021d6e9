// One lead, one workflow: the robot call, the partner lookup, the CRM lead and the sellers' alerts
// of the original process. The call starts in the workflow's first task, before anything else, so
// neither Bitrix24 nor Telegram ever holds it up; the CRM branch runs alongside. The workflow stays
// open until the call process ends, which is what makes a second lead with the same ref a
// duplicate, and it keeps the lead's searchable state.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  log,
  patched,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { activity } from './activityOptions';
import { ALERT_BEFORE_CRM, follows1_2_0 } from './patches';
import { createCallProcess, failureMessage } from './callProcess';
import {
  claimCallUpdate,
  getLeadStateQuery,
  operatorActionUpdate,
  reportCallResultSignal,
  reportCallResultUpdate,
} from './definitions';
import { CallAttemptsKey, LeadStatusKey, ManualReasonKey, NextCallAtKey } from './searchAttributes';
import type { TypedSearchAttributes } from '@temporalio/common';
import type {
  CallReport,
  CallState,
  LeadInput,
  LeadState,
  LeadStatus,
  ManualReason,
  OperatorAction,
} from './types';

const notifySellers = activity('notifySellers');
const notifySellersCrmLead = activity('notifySellersCrmLead');

/**
 * How long the new-lead alert waits for the CRM lead (1.2.0 on). Changing it changes the timers of
 * running leads: a change needs a patch.
 */
export const ALERT_WAITS_FOR_CRM_MS = 3_000;

/** What the Web UI searches on; "waiting for the result" is short and shows as Calling. */
function searchableStatus(status: LeadStatus): LeadStatus {
  return status === 'WaitingForResult' ? 'Calling' : status;
}

interface Shown {
  status: LeadStatus;
  attempts: number;
  nextCallAt?: number;
  manualReason?: ManualReason;
}

function shownAtStart(attributes: TypedSearchAttributes): Shown {
  return {
    status: (attributes.get(LeadStatusKey) as LeadStatus | undefined) ?? 'New',
    attempts: attributes.get(CallAttemptsKey) ?? 0,
    nextCallAt: attributes.get(NextCallAtKey)?.getTime(),
    manualReason: undefined,
  };
}

export async function processLead(input: LeadInput): Promise<LeadState> {
  const { workflowId, runId } = workflowInfo();
  const registerLead = activity('registerLead', input.policy.crmTaskQueue);
  const receivedAt = Date.now();
  const history: LeadState['history'] = [
    { at: receivedAt, what: `заявка принята (${input.source})` },
    ...input.warnings.map((what) => ({ at: receivedAt, what })),
  ];
  const record = (what: string, at = Date.now()) => history.push({ at, what });
  let partner: LeadState['partner'];
  let crmLeadId: number | undefined;
  // Manual handling this workflow itself asked for (CRM trouble) stays flagged whatever the call does.
  let ownManualReason: ManualReason | undefined;

  // Search attributes are written only when what they show changes, and at most once per workflow
  // task (after the task's code has run): each write is a history event and a visibility update.
  // The start request set the first ones (see searchAttributesAtStart).
  let published = JSON.stringify(shownAtStart(workflowInfo().typedSearchAttributes));
  let publishQueued = false;
  const publish = () => {
    if (publishQueued) return;
    publishQueued = true;
    void Promise.resolve().then(() => {
      publishQueued = false;
      const { status, attempts, nextCallAt, manualReason } = callState();
      const shown: Shown = { status: searchableStatus(status), attempts, nextCallAt, manualReason };
      const key = JSON.stringify(shown);
      if (key === published) return;
      published = key;
      upsertSearchAttributes([
        { key: LeadStatusKey, value: shown.status },
        { key: CallAttemptsKey, value: shown.attempts },
        { key: NextCallAtKey, value: shown.nextCallAt ? new Date(shown.nextCallAt) : null },
        { key: ManualReasonKey, value: shown.manualReason ?? null },
      ]);
    });
  };

  const call = input.phoneCallable
    ? createCallProcess(input, { workflowId, runId, changed: publish, record })
    : undefined;
  const notCalled: CallState = { status: 'PhoneNotDialable', attempts: 0, nightSmsSent: false };
  function callState(): CallState {
    const own = call?.state ?? notCalled;
    return { ...own, manualReason: own.manualReason ?? ownManualReason };
  }
  const leadState = (): LeadState => ({
    ref: input.ref,
    ...(input.clientRef ? { clientRef: input.clientRef } : {}),
    ...callState(),
    partner,
    crmLeadId,
    history,
  });

  setHandler(getLeadStateQuery, leadState);
  /** Throws unless the report is for the attempt being awaited: the update's validator, the signal's check. */
  const validateReport = (r: CallReport) => {
    if (!call) throw new Error(`call attempt ${r.attempt} is not awaited`);
    call.validateReport(r);
  };
  setHandler(reportCallResultUpdate, (r) => call!.accept(r), { validator: validateReport });
  setHandler(reportCallResultSignal, (r) => {
    try {
      validateReport(r);
    } catch (err) {
      log.info('call report not awaited: ignored', {
        attempt: r.attempt,
        result: r.result,
        why: String(err),
      });
      return;
    }
    call!.accept(r);
  });
  setHandler(claimCallUpdate, (c) => call!.claim(c), {
    validator: (c) => {
      if (!call) throw new Error(`call attempt ${c.attempt} is not awaited`);
      call.validateClaim(c);
    },
  });
  setHandler(
    operatorActionUpdate,
    async (action: OperatorAction) => {
      record(operatorNote(action));
      await call!.act(action);
      return leadState();
    },
    {
      validator: (action) => {
        if (!call) throw new Error(`the lead is ${callState().status}: nothing to do`);
        call.validateAction(action);
      },
    },
  );

  // 1. The call goes first, in this very task: nothing below may delay it.
  const callDone = call?.run();
  if (!call) {
    record(
      input.phoneIssue === 'phone_too_long'
        ? 'телефон слишком длинный: без звонка'
        : input.phoneIssue === 'country_not_allowed'
          ? 'без звонка и SMS: номер не из разрешённых стран'
          : input.phoneIssue === 'daily_limit_reached'
            ? 'без звонка и SMS: лимит заявок с номера за сутки'
            : input.phoneIssue === 'not_a_personal_number'
              ? 'без звонка и SMS: номер не личный (платный, бесплатный или служебный)'
              : 'номер не для звонка',
    );
    publish();
  }

  // 2. Sellers hear of the lead at once (1.1.0): the CRM lead, which Bitrix24's request budget may
  // hold up in a burst, follows as a link. Leads started by 1.0.0 alert after the CRM lead. From
  // 1.2.0 the alert waits a moment for the CRM lead (ALERT_WAITS_FOR_CRM_MS): Bitrix24 usually answers
  // within a second, and then one message carries the lead, its CRM link and the partner Bitrix24
  // knows, instead of an alert, an edit and two more workflow tasks.
  // A lead started by 1.3.0 records its id here, in its first task, and no other.
  const alertWithCrmLead = follows1_2_0();
  const alertBeforeCrm = alertWithCrmLead || patched(ALERT_BEFORE_CRM);
  const alert = (kind: 'new_lead' | 'manual_handling', reason?: string) => ({
    kind,
    ref: input.ref,
    workflowId,
    name: input.name,
    phone: input.phone,
    city: input.city,
    partner: partner?.status === 'found' ? partner.title : input.partnerCode,
    site: input.site,
    orderAmount: input.orderAmount,
    crmLeadId,
    reason,
    actions: false,
    receivedAt: input.receivedAt,
  });
  const sellersAlerted =
    alertBeforeCrm && !alertWithCrmLead ? tellSellers(() => notifySellers(alert('new_lead'))) : undefined;

  // 3. The partner and the CRM lead, in one activity, idempotent on ref + run so a retry or a
  // replay never makes a second lead. A refused partner search does not stop the lead, it makes it
  // a person's job.
  let partnerAlert: string | undefined;
  const needsPerson = (reason: ManualReason) => {
    ownManualReason ??= reason;
    publish();
  };
  const crmLeadInput = () => ({
    ref: `${input.ref}#${runId}`,
    name: input.name,
    phone: input.phone,
    city: input.city,
    timezone: input.timezone,
    partnerCode: input.partnerCode,
    site: input.site,
    orderAmount: input.orderAmount,
    comment:
      [
        input.comment,
        input.clientRef ? `номер заявки на сайте: ${input.clientRef}` : undefined,
        ...input.warnings,
      ]
        .filter(Boolean)
        .join('\n') || undefined,
    receivedAt: input.receivedAt,
  });
  function crmAnswered(registered: Awaited<ReturnType<typeof registerLead>>): void {
    const found = registered.partner;
    if (found?.status === 'found') {
      partner = { status: 'found', id: found.partner.id, title: found.partner.title };
      record(`партнёр: ${found.partner.title}`);
    } else if (found?.status === 'not_found') {
      partner = { status: 'not_found' };
      record('партнёр не найден');
    } else if (found?.status === 'lookup_failed') {
      partner = { status: 'lookup_failed' };
      partnerAlert = `поиск партнёра в Bitrix24 не удался: ${found.reason}`;
      record(partnerAlert);
      needsPerson('crm_auth_failed');
    }
    crmLeadId = registered.leadId;
    record(`лид в CRM: ${registered.leadId}`);
    call?.crmLeadCreated(registered.leadId);
  }
  function crmFailed(err: unknown): void {
    if (input.partnerCode) partner = { status: 'lookup_failed' };
    partnerAlert = `лид в CRM не создан: ${failureMessage(err)}`;
    record(partnerAlert);
    const refused = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure;
    needsPerson(refused && err.cause.type === 'Bitrix24AuthError' ? 'crm_auth_failed' : 'crm_unavailable');
    call?.crmLeadFailed();
  }
  // 4. Sellers hear of every lead, and of one that needs a person; a failed alert is only recorded.
  if (alertWithCrmLead) {
    let crmSettled = false;
    const registered = registerLead(crmLeadInput()).then(crmAnswered, crmFailed);
    void registered.then(() => (crmSettled = true));
    if (await condition(() => crmSettled, ALERT_WAITS_FOR_CRM_MS)) {
      // One message: the lead with its CRM link, or the lead and why a person must take it.
      await tellSellers(() =>
        notifySellers(alert(partnerAlert ? 'manual_handling' : 'new_lead', partnerAlert)),
      );
    } else {
      const alerted = tellSellers(() => notifySellers(alert('new_lead')));
      await registered;
      await Promise.all([alerted, ...crmFollowUps()]);
    }
  } else if (alertBeforeCrm) {
    // The releases before 1.2.0 awaited the activity right here, and their histories replay only if
    // the alerts are scheduled in the same microtask as then (an update handled in the same workflow
    // task completes a few microtasks later): so no extra async step on these two paths.
    try {
      crmAnswered(await registerLead(crmLeadInput()));
    } catch (err) {
      crmFailed(err);
    }
    await Promise.all([sellersAlerted!, ...crmFollowUps()]);
  } else {
    try {
      crmAnswered(await registerLead(crmLeadInput()));
    } catch (err) {
      crmFailed(err);
    }
    await tellSellers(() =>
      notifySellers(alert(partnerAlert ? 'manual_handling' : 'new_lead', partnerAlert)),
    );
  }

  /** After an alert that went before the CRM answered: the CRM link, and why a person is needed. */
  function crmFollowUps(): Array<Promise<void>> {
    const followUps: Array<Promise<void>> = [];
    if (crmLeadId !== undefined) {
      followUps.push(
        tellSellers(() =>
          notifySellersCrmLead({
            ref: input.ref,
            workflowId,
            name: input.name,
            crmLeadId: crmLeadId!,
            partner: partner?.status === 'found' ? partner.title : undefined,
            receivedAt: input.receivedAt,
          }),
        ),
      );
    }
    if (partnerAlert)
      followUps.push(tellSellers(() => notifySellers(alert('manual_handling', partnerAlert))));
    return followUps;
  }

  async function tellSellers(send: () => Promise<unknown>) {
    try {
      await send();
    } catch (err) {
      log.error('seller alert failed', { error: String(err) });
      record('уведомление продавцам не отправлено');
    }
  }

  // 5. Stay open while the call process runs, so the ref counts as in progress.
  await callDone;
  publish();
  return leadState();
}

function operatorNote(action: OperatorAction): string {
  return `оператор: ${action.action}${action.by ? ` (${action.by})` : ''}${action.note ? `: ${action.note}` : ''}`;
}
