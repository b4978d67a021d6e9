// The robot-call workflow of leads accepted before the call moved into the lead's own workflow
// (see processLead): it stays registered until the last of them has finished. The process itself
// is workflows/callProcess.ts; this wraps it with the signals and the update the lead workflow and
// the result endpoint used to talk to it.
import { getExternalWorkflowHandle, log, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { createCallProcess } from './callProcess';
import {
  callOperatorActionSignal,
  callProgressSignal,
  crmLeadCreatedSignal,
  crmLeadFailedSignal,
  getCallStatusQuery,
  reportCallResultUpdate,
} from './definitions';
import { FINAL_STATUSES, LONG_STATES, type CallInput, type CallOutcome, type LeadStatus } from './types';

export async function callCustomer(input: CallInput): Promise<CallOutcome> {
  const { workflowId, runId } = workflowInfo();
  const parent = getExternalWorkflowHandle(input.leadWorkflowId);
  // Three generations of this workflow may still run. From the third, only the states a lead can
  // sit in for a long time (asleep, missed call, manual handling), and leaving them, are reported,
  // and the final state travels in the result; before it, every status was. In the first, the
  // first call waited for its "Calling" report.
  const reportOnlyLongStates = patched('report-only-long-states');
  const callWithoutWaitingForReport = patched('call-without-waiting-for-progress-report');
  // Progress reports to the lead workflow go out in order, one after another.
  let progressChain: Promise<void> = Promise.resolve();
  let reported: LeadStatus = 'New';
  let finalReported = false;
  const call = createCallProcess(input, {
    workflowId,
    runId,
    callWithoutWaitingForReport,
    batchCrmNotes: false,
    report(snapshot) {
      if (reportOnlyLongStates && !LONG_STATES.includes(snapshot.status) && !LONG_STATES.includes(reported)) {
        return progressChain;
      }
      reported = snapshot.status;
      finalReported = FINAL_STATUSES.includes(snapshot.status);
      progressChain = progressChain.then(async () => {
        try {
          await parent.signal(callProgressSignal, snapshot);
        } catch (err) {
          // The lead workflow outlives this one; if it is gone (terminated by hand) the call goes on.
          log.warn('could not report progress to the lead workflow', { error: String(err) });
        }
      });
      return progressChain;
    },
  });
  // A signal that arrived with the first task (the CRM lead id, after a worker crash) is
  // delivered while setHandler runs.
  setHandler(crmLeadCreatedSignal, (id) => call.crmLeadCreated(id));
  setHandler(crmLeadFailedSignal, () => call.crmLeadFailed());
  setHandler(callOperatorActionSignal, (action) => call.act(action));
  setHandler(reportCallResultUpdate, (r) => call.accept(r), { validator: (r) => call.validate(r) });
  setHandler(getCallStatusQuery, () => call.snapshot());

  const outcome = await call.run();
  // The lead workflow already recorded a final event it was sent.
  return finalReported ? { ...outcome, event: undefined } : outcome;
}
