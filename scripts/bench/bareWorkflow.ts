// The floor the lead pipeline is compared with: one workflow that runs one activity, nothing else.
import { proxyActivities } from '@temporalio/workflow';

export interface BareActivities {
  touch(): Promise<void>;
}

const { touch } = proxyActivities<BareActivities>({ startToCloseTimeout: '10s' });

export async function bare(): Promise<void> {
  await touch();
}
