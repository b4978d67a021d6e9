// Child-process entry: bundles the workflows into the file named by argv[2]. Run by
// buildWorkflowBundle so that webpack's memory (about 200 MB) is returned with this process.
import fs from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowBundleOptions } from './bundle';

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: bundleMain <output file>');
  const { code } = await bundleWorkflowCode(workflowBundleOptions());
  fs.writeFileSync(`${out}.tmp`, code);
  fs.renameSync(`${out}.tmp`, out);
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
