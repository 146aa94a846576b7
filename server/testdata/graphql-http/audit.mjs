// Runs graphql-http's server audits against the URL given as the first
// argument and prints the results as JSON: [{id, name, status, reason}].
// status is ok, notice, warn (a SHOULD) or error (a MUST).
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const results = [];
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason ?? '' });
}
console.log(JSON.stringify(results));
