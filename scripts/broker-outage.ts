// The broker outage, long form: `npx tsx scripts/broker-outage.ts [seconds]` (default 120).
// Needs a built dist/ (npm run build) and mosquitto. Prints the numbers as JSON.
import { brokerOutage } from './lib/broker-outage.js';

const outageSec = Number(process.argv[2] ?? 120);
const result = await brokerOutage({ outageSec, queueMax: 20, log: (s) => console.error(s) });
console.log(JSON.stringify(result, null, 2));
