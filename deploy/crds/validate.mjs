// Validate External Secrets resources against the schemas of their CRDs, offline.
//
// Reads a JSON array of Kubernetes documents on stdin (deploy/validate.sh turns the
// rendered YAML into it) and checks every external-secrets.io document:
//   - its apiVersion must be one External Secrets still serves: v0.17.0 (May 2025)
//     stopped serving v1beta1, so a manifest using it is refused by a current cluster;
//   - its content must validate against the CRD schema of that version and kind, from
//     @kubernetes-models/external-secrets (package.json pins it; generated from
//     External Secrets v0.16.2's API types). CRD schemas do not forbid unknown keys, so
//     neither does this check; wrong types, missing required fields and bad enum values fail.
// Exits 1 with one line per problem, 0 when every document passes.
import { ClusterSecretStore } from "@kubernetes-models/external-secrets/external-secrets.io/v1/ClusterSecretStore";
import { ExternalSecret } from "@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret";
import { SecretStore } from "@kubernetes-models/external-secrets/external-secrets.io/v1/SecretStore";

const GROUP = "external-secrets.io/";
const SERVED = { "external-secrets.io/v1": { ClusterSecretStore, ExternalSecret, SecretStore } };

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const documents = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const problems = [];
let checked = 0;
for (const doc of documents) {
  if (!doc || typeof doc.apiVersion !== "string" || !doc.apiVersion.startsWith(GROUP)) continue;
  const where = `${doc.kind}/${doc.metadata?.name ?? "?"}`;
  const kinds = SERVED[doc.apiVersion];
  if (!kinds) {
    problems.push(`${where}: apiVersion ${doc.apiVersion} is not served by External Secrets (use external-secrets.io/v1)`);
    continue;
  }
  const Model = kinds[doc.kind];
  if (!Model) {
    problems.push(`${where}: no schema for kind ${doc.kind} in ${doc.apiVersion}`);
    continue;
  }
  try {
    new Model(doc).validate();
    checked += 1;
  } catch (error) {
    problems.push(`${where}: ${error.message}`);
  }
}
for (const problem of problems) console.log(problem);
if (problems.length === 0 && checked === 0) {
  console.log("no External Secrets resource found: nothing was validated");
  process.exit(1);
}
process.exit(problems.length ? 1 : 0);
