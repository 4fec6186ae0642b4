#!/usr/bin/env node
// The `advanced-notes` command: runs the compiled CLI (dist/). In a checkout of the project, where the
// TypeScript sources sit beside it, it compiles them first when the build is missing or older than they are;
// an installed package ships dist/ only.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  process.stderr.write(`advanced-notes: needs Node 20.19 or later (this is ${process.version}).\n`);
  process.exit(2);
}

const root = join(__dirname, '..');
const built = join(root, 'dist', 'cli.js');
const sources = readdirSync(root)
  .filter((name) => name.endsWith('.ts'))
  .map((name) => statSync(join(root, name)).mtimeMs);
if (sources.length > 0 && (!existsSync(built) || statSync(built).mtimeMs < Math.max(...sources))) {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}
require(built)
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
