// Runs once before the end-to-end tests: provisions the Temporal CLI (and the Java test server) and
// bundles the workflow code once, so each test file starts its server and worker in well under a second.
import { temporalCliPath, timeSkippingServerPath } from '../../support/temporalServer';
import { bundleWorkflowsOnce } from './bundleOnce';

export default async function globalSetup(): Promise<void> {
  process.env.STL_TEMPORAL_CLI = temporalCliPath();
  process.env.STL_TEST_SERVER = timeSkippingServerPath();
  await bundleWorkflowsOnce();
}
