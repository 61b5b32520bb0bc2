// Runs the graphql-http server audit (GraphQL over HTTP conformance) against a live server and
// prints the results as JSON: [{id, name, status, reason?, responseStatus?}].
// Usage: node audit.mjs <url>  with the bearer token in the COLLABX_AUDIT_TOKEN environment
// variable (every request of the audit carries it). Run by tests/api/test_graphql_over_http.py.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const token = process.env.COLLABX_AUDIT_TOKEN;
if (!url || !token) {
  console.error('usage: COLLABX_AUDIT_TOKEN=<token> node audit.mjs <url>');
  process.exit(2);
}

// Every audit request authenticates like a real client would.
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
const report = results.map((result) => {
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    entry.responseStatus = result.response ? result.response.status : null;
  }
  return entry;
});
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
