// Composes Federation v2 subgraphs into a supergraph; run by tests/schema/test_federation.py.
// Input on stdin: JSON [{"name": ..., "url": ..., "sdl": ...}]. Output on stdout: JSON
// {"errors": [message...], "hints": [message...], "supergraphSdl": string | null}.
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const services = JSON.parse(Buffer.concat(chunks).toString("utf8")).map((s) => ({
  name: s.name,
  url: s.url,
  typeDefs: parse(s.sdl),
}));
const result = composeServices(services);
const out = {
  errors: (result.errors ?? []).map((e) => e.message),
  hints: (result.hints ?? []).map((h) => h.message ?? String(h)),
  supergraphSdl: result.errors ? null : result.supergraphSdl,
};
process.stdout.write(JSON.stringify(out));
