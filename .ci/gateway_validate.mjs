// Validates Gateway API objects (JSON, one per line on stdin) against the schemas of the
// published Gateway API CRDs, as compiled by @kubernetes-models/gateway-api (pinned in
// .ci/delivery-checks). Usage: node gateway_validate.mjs NODE_MODULES_DIR < objects.jsonl
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const modules = process.argv[2];
const schemas = {
  "gateway.networking.k8s.io/v1/HTTPRoute": "IoK8sSigsGatewayApiApisV1HTTPRoute",
  "gateway.networking.k8s.io/v1/Gateway": "IoK8sSigsGatewayApiApisV1Gateway",
};
let failures = 0;
let checked = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { file, object } = JSON.parse(line);
  const name = schemas[`${object.apiVersion}/${object.kind}`];
  if (!name) {
    console.log(`FAIL ${file}: no Gateway API schema for ${object.apiVersion} ${object.kind}`);
    failures++;
    continue;
  }
  const path = join(modules, "@kubernetes-models/gateway-api/_schemas", `${name}.js`);
  const { validate } = await import(pathToFileURL(path).href);
  checked++;
  if (validate(object)) {
    console.log(`ok   ${file}: ${object.kind} ${object.metadata?.name}`);
  } else {
    failures++;
    console.log(`FAIL ${file}: ${object.kind} ${object.metadata?.name}`);
    for (const e of validate.errors) console.log(`     ${e.instancePath} ${e.keyword} ${JSON.stringify(e.params)}`);
  }
}
if (checked === 0) {
  console.log("FAIL no Gateway API object checked");
  failures++;
}
process.exit(failures ? 1 : 0);
