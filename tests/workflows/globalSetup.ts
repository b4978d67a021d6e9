// Runs once before the workflow tests: only the Java time-skipping server and the workflow bundle
// (no Temporal CLI, no emulators: the activities are stubs).
import { timeSkippingServerPath } from '../../support/temporalServer';
import { bundleWorkflowsOnce } from '../support/bundleOnce';

export default async function globalSetup(): Promise<void> {
  process.env.STL_TEST_SERVER = timeSkippingServerPath();
  await bundleWorkflowsOnce();
}
