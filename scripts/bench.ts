// `npm run bench [-- --quick]`: see scripts/bench/main.ts. The logger reads LOG_LEVEL when it is
// first imported, so it is set before anything of the service loads (BENCH_LOG_LEVEL to change it).
process.env.LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn';
void import('./bench/main');
