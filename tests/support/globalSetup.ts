// Runs once before the suite: provisions the Temporal CLI (and the Java test server) and bundles
// the workflow code once, so each test file starts its server and worker in well under a second.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { temporalCliPath, timeSkippingServerPath } from '../../support/temporalServer';
import { workflowBundleOptions } from '../../worker/bundle';

export default async function globalSetup(): Promise<void> {
  process.env.STL_TEMPORAL_CLI = temporalCliPath();
  process.env.STL_TEST_SERVER = timeSkippingServerPath();
  const { code } = await bundleWorkflowCode(workflowBundleOptions());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-bundle-'));
  const file = path.join(dir, 'workflow-bundle.js');
  fs.writeFileSync(file, code);
  process.env.STL_WORKFLOW_BUNDLE = file;
}
