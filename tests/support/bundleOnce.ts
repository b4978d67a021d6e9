// The workflow bundle for the test workers, built once per Jest run: the end-to-end and the
// workflow projects each have a global setup, and `npm test` runs both in one process.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowBundleOptions } from '../../worker/bundle';

export async function bundleWorkflowsOnce(): Promise<void> {
  if (process.env.STL_WORKFLOW_BUNDLE && fs.existsSync(process.env.STL_WORKFLOW_BUNDLE)) return;
  const { code } = await bundleWorkflowCode(workflowBundleOptions());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-bundle-'));
  const file = path.join(dir, 'workflow-bundle.js');
  fs.writeFileSync(file, code);
  process.env.STL_WORKFLOW_BUNDLE = file;
}
