// `npm run emulators`: the four provider emulators on their own, for trying the service by hand
// against them from another process (set the providers' URLs to the printed addresses).
import { startEmulators } from '.';

startEmulators().then((emulators) => {
  console.log(JSON.stringify(emulators.urls, null, 2));
  const stop = () => void emulators.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
});
