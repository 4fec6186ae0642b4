#!/usr/bin/env node
// The `advanced-notes` command: runs the compiled CLI (dist-client/), compiling client/ first when the
// build is missing or older than its sources.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

if (Number(process.versions.node.split('.')[0]) < 24) {
  process.stderr.write(
    `advanced-notes: needs Node 24 or later (this is ${process.version}); run it as \`npx advanced-notes\` or \`npm run cli --\` in the project, which use the project's Node.\n`,
  );
  process.exit(2);
}

const root = join(__dirname, '..');
const built = join(root, 'dist-client', 'cli.js');
const sources = readdirSync(join(root, 'client')).map((name) => statSync(join(root, 'client', name)).mtimeMs);
if (!existsSync(built) || statSync(built).mtimeMs < Math.max(...sources)) {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.client.json')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}
require(built)
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
