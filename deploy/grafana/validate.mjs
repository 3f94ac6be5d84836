// Validate Grafana dashboard JSON files against Grafana's own published schema, offline.
//
//   node deploy/grafana/validate.mjs DASHBOARD.json...
//
// Grafana publishes its schemas (the dashboard kind and each panel plugin's options, written in
// CUE) as the TypeScript types of the npm package @grafana/schema, which Grafana generates from
// them (package.json pins the version); no JSON Schema of the classic dashboard is published in a
// package. So this script turns each dashboard into a TypeScript module that declares:
//   - the whole dashboard as a Dashboard, and each panel as a Panel (or a RowPanel) of the
//     dashboard kind (raw/dashboard/x);
//   - each panel's `options` as the Options of its plugin, and `fieldConfig.defaults.custom`
//     as the plugin's FieldConfig (raw/composable/<type>/panelcfg/x), when the plugin has them;
// and type-checks it with the TypeScript compiler, strict. Wrong types, missing required
// fields, values outside an enum and unknown properties (TypeScript's excess property check on
// object literals) fail. A panel type without a schema in the package fails too: its options
// could not be checked. The schemas' enums are TypeScript enums, whose JSON form is their
// values, so every type is checked as Json<T>, the same type with each string enum replaced by
// the union of its values.
// Exits 1 with one line per problem, 0 when every dashboard passes.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const SCHEMA_DIR = path.dirname(require.resolve("@grafana/schema/package.json"));
const SCHEMA = JSON.parse(readFileSync(path.join(SCHEMA_DIR, "package.json"), "utf8"));
const KIND = "@grafana/schema/dist/esm/raw/dashboard/x/Dashboard_types.gen";

// panel type -> the module of its options schema, from the package's exports.
const PANEL_SCHEMAS = new Map();
for (const key of Object.keys(SCHEMA.exports)) {
  const match = key.match(/^\.\/dist\/esm\/raw\/composable\/([a-z0-9]+)\/panelcfg\/x\/\w+_types\.gen$/);
  if (match) {
    const types = readFileSync(path.join(SCHEMA_DIR, SCHEMA.exports[key].types), "utf8");
    PANEL_SCHEMAS.set(match[1], {
      module: "@grafana/schema" + key.slice(1),
      options: /export interface Options\b/.test(types),
      fieldConfig: /export interface FieldConfig\b/.test(types),
    });
  }
}

const PRELUDE = `import type * as kind from "${KIND}";
type Json<T> = T extends string ? \`\${T}\` : T extends number | boolean | null | undefined ? T
  : T extends ReadonlyArray<infer U> ? Array<Json<U>> : T extends object ? { [K in keyof T]: Json<T[K]> } : T;
`;

function source(dashboard) {
  const parts = [PRELUDE];
  const sections = []; // [first line, what]
  let line = PRELUDE.split("\n").length;
  const imports = new Map();
  const declare = (what, type, value) => {
    const text = `export const v${sections.length}: ${type} = ${JSON.stringify(value, null, 1)};\n`;
    sections.push([line, what]);
    parts.push(text);
    line += text.split("\n").length - 1;
  };
  const problems = [];
  declare("dashboard", "Json<kind.Dashboard>", dashboard);
  const panels = [];
  for (const panel of Array.isArray(dashboard.panels) ? dashboard.panels : []) {
    panels.push(panel);
    if (panel && panel.type === "row" && Array.isArray(panel.panels)) panels.push(...panel.panels);
  }
  for (const panel of panels) {
    if (!panel || typeof panel !== "object") continue;
    const what = `panel ${panel.id ?? "?"} "${panel.title ?? ""}" (${panel.type})`;
    if (panel.type === "row") {
      declare(what, "Json<kind.RowPanel>", panel);
      continue;
    }
    declare(what, "Json<kind.Panel>", panel);
    const schema = PANEL_SCHEMAS.get(panel.type);
    if (!schema) {
      problems.push(`${what}: no schema for panel type '${panel.type}' in @grafana/schema ${SCHEMA.version}`);
      continue;
    }
    if (!imports.has(panel.type)) {
      const alias = `plugin_${panel.type}`;
      imports.set(panel.type, alias);
      parts[0] += `import type * as ${alias} from "${schema.module}";\n`;
      line += 1;
      for (const section of sections) section[0] += 1;
    }
    const alias = imports.get(panel.type);
    if (schema.options && panel.options !== undefined) declare(`${what} options`, `Json<${alias}.Options>`, panel.options);
    const custom = panel.fieldConfig?.defaults?.custom;
    if (schema.fieldConfig && custom !== undefined) declare(`${what} fieldConfig.defaults.custom`, `Json<${alias}.FieldConfig>`, custom);
  }
  return { text: parts.join(""), sections, problems };
}

function check(file) {
  let dashboard;
  try {
    dashboard = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    return [`${file}: ${error.message}`];
  }
  if (!dashboard || typeof dashboard !== "object" || Array.isArray(dashboard)) return [`${file}: not a dashboard object`];
  const { text, sections, problems } = source(dashboard);
  // A module beside node_modules, in memory only: imports resolve as they would from this folder.
  const name = path.join(HERE, "__dashboard_check__.ts");
  const options = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (f, ...rest) =>
    f === name ? ts.createSourceFile(f, text, ts.ScriptTarget.ES2022, true) : getSourceFile.call(host, f, ...rest);
  host.fileExists = (f) => f === name || fileExists.call(host, f);
  host.readFile = (f) => (f === name ? text : readFile.call(host, f));
  const program = ts.createProgram([name], options, host);
  const found = problems.map((p) => `${file}: ${p}`);
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n      ");
    if (diagnostic.file?.fileName !== name) {
      found.push(`${file}: the schema itself did not compile: ${message}`);
      continue;
    }
    const start = diagnostic.start ?? 0;
    const at = diagnostic.file.getLineAndCharacterOfPosition(start).line + 1;
    const section = sections.filter(([first]) => first <= at).pop();
    const token = text.slice(start, start + (diagnostic.length ?? 0)); // the offending key, as written
    found.push(`${file}: ${section ? section[1] : "module"}: ${token ? `${token}: ` : ""}${message}`);
  }
  return found;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.log("usage: node deploy/grafana/validate.mjs DASHBOARD.json...");
  process.exit(2);
}
const problems = files.flatMap(check);
for (const problem of problems) console.log(problem);
if (problems.length === 0) console.log(`${files.length} dashboard(s) valid against @grafana/schema ${SCHEMA.version}`);
process.exit(problems.length ? 1 : 0);
