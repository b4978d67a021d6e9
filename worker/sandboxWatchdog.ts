// The workflow sandbox's watchdog. The SDK runs every call into a workflow's V8 context with vm's
// `timeout` (its unexposed isolateExecutionTimeout, 5 s), so that a workflow stuck in a loop fails
// its task ("Potential deadlock detected") instead of holding the thread. Node implements that
// timeout by starting a watchdog thread for every call: 130–220 µs each on this machine against
// 2–9 µs without, several calls per workflow task. Profiled at 10 leads/s it was half of the
// workflow thread's CPU (README, "Figures"). Without it, a workflow that never yields holds its
// worker's workflow thread until the process restarts; the lead workflows have no unbounded loop
// (tests/workflows cover every path), so the service runs without it unless
// WORKFLOW_DEADLOCK_GUARD=true.
import { ThreadedVMWorkflowCreator } from '@temporalio/worker/lib/workflow/threaded-vm';

type CreateOptions = Parameters<typeof ThreadedVMWorkflowCreator.create>[0];

let unguarded = 0;
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  const create = ThreadedVMWorkflowCreator.create.bind(ThreadedVMWorkflowCreator);
  ThreadedVMWorkflowCreator.create = (options: CreateOptions) =>
    create(
      unguarded > 0 ? { ...options, isolateExecutionTimeoutMs: undefined as unknown as number } : options,
    );
}

/**
 * Runs `createWorker` (a Worker.create with workflows) so that its workflow threads call into the
 * sandbox without the watchdog. Other workers created meanwhile in this process are affected too.
 */
export async function withoutSandboxWatchdog<T>(createWorker: () => Promise<T>): Promise<T> {
  install();
  unguarded += 1;
  try {
    return await createWorker();
  } finally {
    unguarded -= 1;
  }
}
