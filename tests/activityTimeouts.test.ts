// Each adapter's HTTP timeout is shorter than the start-to-close timeout of every activity that
// makes the request: a hung provider then fails the request with a failure that names it, instead
// of the whole attempt timing out with nothing said.
import { HTTP_TIMEOUT_MS } from '../activities/http';
import { parseDuration } from '../domain/duration';
import { ACTIVITY_OPTIONS } from '../workflows/activityOptions';

const PROVIDER_OF: Record<keyof typeof ACTIVITY_OPTIONS, keyof typeof HTTP_TIMEOUT_MS> = {
  registerLead: 'bitrix24',
  recordCallAttempts: 'bitrix24',
  placeRobotCall: 'voximplant',
  sendSms: 'smsru',
  notifySellers: 'telegram',
  notifySellersCrmLead: 'telegram',
};

test.each(Object.entries(PROVIDER_OF))(
  '%s: its %s requests time out before the activity does',
  (name, provider) => {
    const startToClose = parseDuration(
      ACTIVITY_OPTIONS[name as keyof typeof ACTIVITY_OPTIONS].startToCloseTimeout,
    );
    expect(startToClose).toBeDefined();
    expect(HTTP_TIMEOUT_MS[provider]).toBeLessThan(startToClose!);
  },
);
