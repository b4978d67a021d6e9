// `npm run bench [-- --quick]`: see scripts/bench/main.ts and `npm run bench -- --help`. The logger
// reads LOG_LEVEL when it is first imported, so it is set before anything of the service loads.
import { benchSettings, usage } from './bench/settings';

let settings: ReturnType<typeof benchSettings>;
try {
  settings = benchSettings();
} catch (err) {
  console.error(`${err instanceof Error ? err.message : String(err)}\n\n${usage()}`);
  process.exit(2);
}
if (settings.help) {
  console.log(usage());
  process.exit(0);
}
process.env.LOG_LEVEL = settings.logLevel;
void import('./bench/main').then(({ runBench }) => runBench(settings));
