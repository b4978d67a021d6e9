// The benchmark's own Temporal dev server: the run command's flags (devServerArgs), a temporary
// SQLite file, free ports. Stopped at the end; killed synchronously if the process exits first.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { devServerArgs, temporalCliPath } from '../../support/temporalServer';
import { sleep } from './stats';

export interface DevServer {
  cli: string;
  version: string;
  pid: number;
  address: string;
  port: number;
  uiPort: number;
  namespace: string;
  dbFile: string;
  logFile: string;
  /** VmRSS of the server process, bytes */
  rssBytes(): number | undefined;
  /** user + system CPU seconds used so far */
  cpuSeconds(): number | undefined;
  /** SQLite main file, -wal and -shm sizes, bytes */
  dbSizes(): { db: number; wal: number; shm: number };
  stop(): Promise<void>;
  /** For process 'exit': no waiting possible, so SIGKILL. */
  killNow(): void;
  /** set when the server exited without stop() asking it to */
  unexpectedExit?: { code: number | null; signal: string | null; at: Date };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function health(cli: string, address: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(cli, ['operator', 'cluster', 'health', '--address', address], { timeout: 5_000 }, (err, out) =>
      resolve(!err && /SERVING/.test(String(out))),
    );
  });
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

export async function startDevServer(
  dir: string,
  namespace = 'default',
  onUnexpectedExit?: (server: DevServer) => void,
): Promise<DevServer> {
  const cli = temporalCliPath();
  const version = execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let uiPort = await freePort();
  while (uiPort === port) uiPort = await freePort();
  const dbFile = path.join(dir, 'temporal.sqlite');
  const logFile = path.join(dir, 'temporal-server.log');
  const args = devServerArgs({ ip: '127.0.0.1', port, uiPort, namespace, dbFile });
  const log = fs.openSync(logFile, 'a');
  // setpriv --pdeathsig: the kernel kills the server if this process dies without cleaning up (say
  // tsx's signal relay SIGKILLs it while its event loop is busy), so no server is ever left behind.
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => fs.existsSync(f));
  const child: ChildProcess = setpriv
    ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', cli, ...args], { stdio: ['ignore', log, log] })
    : spawn(cli, args, { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const address = `127.0.0.1:${port}`;
  let exited = false;
  let stopping = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      if (!stopping) {
        server.unexpectedExit = { code, signal, at: new Date() };
        onUnexpectedExit?.(server);
      }
      resolve();
    }),
  );

  const killNow = () => {
    stopping = true;
    if (!exited && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  const server: DevServer = {
    cli,
    version,
    pid: child.pid ?? -1,
    address,
    port,
    uiPort,
    namespace,
    dbFile,
    logFile,
    rssBytes() {
      try {
        const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
        return kb ? Number(kb) * 1024 : undefined;
      } catch {
        return undefined;
      }
    },
    cpuSeconds() {
      try {
        const stat = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
      } catch {
        return undefined;
      }
    },
    dbSizes() {
      return { db: fileSize(dbFile), wal: fileSize(`${dbFile}-wal`), shm: fileSize(`${dbFile}-shm`) };
    },
    async stop() {
      stopping = true;
      if (exited) return;
      child.kill('SIGTERM');
      await Promise.race([exitPromise, sleep(10_000)]);
      if (!exited) {
        killNow();
        await Promise.race([exitPromise, sleep(5_000)]);
      }
    },
    killNow,
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`the Temporal dev server exited at start; see ${logFile}`);
    if (await health(cli, address)) break;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`the Temporal dev server did not become healthy in 60 s; see ${logFile}`);
    }
    await sleep(250);
  }
  return server;
}
