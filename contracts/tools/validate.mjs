// Validates contracts/asyncapi.yaml (and every schema file it $refs) with the official AsyncAPI
// parser, offline. Exits 1 on any error diagnostic (printed with its path); warnings are printed
// but do not fail. Usage: node contracts/tools/validate.mjs [path/to/asyncapi.yaml]
import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const document = resolve(process.argv[2] ?? resolve(here, '..', 'asyncapi.yaml'));
const require = createRequire(import.meta.url);

let parserModule;
try {
  // The package's ESM build has extension-less imports Node cannot load; its CommonJS build works.
  parserModule = require('@asyncapi/parser');
} catch (error) {
  console.error(
    `cannot load @asyncapi/parser (${error.code ?? error.message}); install it with: ` +
      `npm ci --prefix ${relative(process.cwd(), here) || '.'}`,
  );
  process.exit(2);
}
const { Parser, fromFile, DiagnosticSeverity } = parserModule;

if (!existsSync(document)) {
  console.error(`no AsyncAPI document at ${document}`);
  process.exit(2);
}

// The 3.1.0 release notice is about the spec version we chose, not a defect of the document.
const IGNORED = new Set(['asyncapi-latest-version']);
const NAMES = { 0: 'error', 1: 'warning', 2: 'info', 3: 'hint' };

const parser = new Parser();
const { document: parsed, diagnostics } = await fromFile(parser, document).parse();

let errors = 0;
for (const diagnostic of diagnostics) {
  if (IGNORED.has(diagnostic.code)) continue;
  const severity = NAMES[diagnostic.severity] ?? String(diagnostic.severity);
  if (diagnostic.severity === DiagnosticSeverity.Error) errors += 1;
  if (diagnostic.severity > DiagnosticSeverity.Warning) continue;
  const where = (diagnostic.path ?? []).join('.') || '<document>';
  const line = diagnostic.range ? `:${diagnostic.range.start.line + 1}` : '';
  const source = diagnostic.source ? relative(process.cwd(), diagnostic.source) : relative(process.cwd(), document);
  console.log(`${severity}: ${source}${line} ${where}: ${diagnostic.message} [${diagnostic.code}]`);
}

if (errors > 0 || !parsed) {
  console.error(`${relative(process.cwd(), document)}: ${errors} error(s); the document is not valid AsyncAPI`);
  process.exit(1);
}
const channels = parsed.channels().all().length;
const operations = parsed.operations().all().length;
const messages = parsed.messages().all().length;
console.log(
  `${relative(process.cwd(), document)}: valid AsyncAPI ${parsed.version()} ` +
    `(${channels} channels, ${operations} operations, ${messages} messages)`,
);
