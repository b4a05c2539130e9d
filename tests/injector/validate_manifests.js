// tests/injector/validate_manifests.js — validates Kubernetes manifests against the Kubernetes
// OpenAPI schemas compiled into the kubernetes-models package (required fields, types, enums,
// formats such as int32 and base64 byte strings).
//
//   node validate_manifests.js [--strict] FILE.yaml...
//
// The OpenAPI schemas do not forbid unknown fields (the API server drops or rejects them), so a
// misspelt field would pass. --strict also type-checks every document with TypeScript against the
// package's interfaces (IDeployment, ...): an object literal with a property its interface does
// not declare is an error there.
//
// Prints one JSON object on stdout: {"errors": ["file#doc kind/name: path: message", ...],
// "docs": [every parsed document]} and exits 1 when any document is invalid or of an unknown
// apiVersion/kind, 0 otherwise. The docs let the Python test check the semantics on top.
"use strict";
const fs = require("fs");
const path = require("path");
const yaml = require("js-yaml");

const errors = [];
const docs = [];

function modelFor(apiVersion, kind) {
  // kubernetes-models lays out one module per group/version: "v1", "apps/v1",
  // "admissionregistration.k8s.io/v1", ...
  if (typeof apiVersion !== "string" || !/^[a-z0-9.\-]+(\/[a-z0-9]+)?$/.test(apiVersion)) return null;
  let mod;
  try {
    mod = require("kubernetes-models/" + apiVersion);
  } catch (e) {
    return null;
  }
  return typeof mod[kind] === "function" ? mod[kind] : null;
}

const args = process.argv.slice(2);
const strict = args[0] === "--strict";
const typed = []; // [where, module path, interface name, doc]

for (const file of strict ? args.slice(1) : args) {
  let parsed;
  try {
    parsed = yaml.loadAll(fs.readFileSync(file, "utf8"));
  } catch (e) {
    errors.push(`${path.basename(file)}: YAML: ${e.message}`);
    continue;
  }
  parsed.forEach((doc, i) => {
    if (doc === null || doc === undefined) return;
    const where = `${path.basename(file)}#${i + 1} ${doc.kind}/${doc.metadata && doc.metadata.name}`;
    docs.push(doc);
    const Model = modelFor(doc.apiVersion, doc.kind);
    if (!Model) {
      errors.push(`${where}: unknown apiVersion/kind ${doc.apiVersion} ${doc.kind}`);
      return;
    }
    typed.push([where, "kubernetes-models/" + doc.apiVersion + "/" + doc.kind, "I" + doc.kind, doc]);
    try {
      new Model(doc).validate();
    } catch (e) {
      const details = (e.errors || []).map((x) => `${x.instancePath || "/"} ${x.message}`);
      errors.push(`${where}: ${details.length ? details.join("; ") : e.message}`);
    }
  });
}
function strictCheck() {
  const ts = require("typescript");
  // A file that does not exist on disk, placed beside node_modules so imports resolve from it.
  const name = path.join(__dirname, "__manifests_check__.ts");
  const lines = typed.map(([, mod, iface, doc], i) =>
    `import type { ${iface} as T${i} } from ${JSON.stringify(mod)}; ` +
    `export const d${i}: T${i} = ${JSON.stringify(doc)};`);
  const text = lines.join("\n") + "\n";
  const options = { strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ES2020, types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile;
  host.getSourceFile = (f, lang, onErr, create) => f === name
    ? ts.createSourceFile(f, text, lang) : getSourceFile.call(host, f, lang, onErr, create);
  const fileExists = host.fileExists;
  host.fileExists = (f) => f === name || fileExists.call(host, f);
  const program = ts.createProgram([name], options, host);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, " ");
    if (d.file && d.file.fileName === name) {
      const line = d.file.getLineAndCharacterOfPosition(d.start).line;
      errors.push(`${typed[line][0]}: strict: ${msg}`);
    } else {
      errors.push(`strict: ${msg}`);
    }
  }
}

if (strict && typed.length) strictCheck();
process.stdout.write(JSON.stringify({ errors, docs }) + "\n");
process.exit(errors.length ? 1 : 0);
