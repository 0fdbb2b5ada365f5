// Runs the shared table of client calls (tests/data/client_cases.json) through the TypeScript
// client against an exporter, for tests/test_client_parity.py. Reads {url, token, cases} on stdin,
// prints the client's stats() as JSON.
import { readFileSync } from "node:fs";
import { createClient } from "../../dist/index.js";

const { url, token, cases } = JSON.parse(readFileSync(0, "utf8"));
const monitoring = createClient({ url, token, flushInterval: 3_600_000, logger: null });
for (const { typescript } of cases) {
  const [group, method] = typescript.call.split(".");
  const result = monitoring[group][method](...typescript.args);
  if (result !== undefined) throw new Error(`${typescript.call} returned ${result}`);
}
const flushed = await monitoring.flush(15_000);
await monitoring.close();
process.stdout.write(JSON.stringify({ flushed, ...monitoring.stats() }));
