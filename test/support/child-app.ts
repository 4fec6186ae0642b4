import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/**
 * `src/main.ts` in a child process of its own, as `node dist/main.js` runs it, without a build: a
 * require hook transpiles the TypeScript on the fly (decorator metadata included).
 */
const REQUIRE_TS = `
const ts = require(${JSON.stringify(require.resolve('typescript'))});
const fs = require('node:fs');
const compilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2023,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  esModuleInterop: true,
};
require.extensions['.ts'] = (module, filename) => {
  const source = fs.readFileSync(filename, 'utf8');
  module._compile(ts.transpileModule(source, { compilerOptions, fileName: filename }).outputText, filename);
};
require(${JSON.stringify(join(__dirname, '..', '..', 'src', 'main.ts'))});
`;

export interface ChildApp {
  process: ChildProcess;
  /** Every stdout line so far (the JSON log). */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** Starts the server with `env` (in `cwd`) and resolves once its start-up line is logged. */
export async function startChildApp(env: Record<string, string>, cwd: string): Promise<ChildApp> {
  const child = spawn(process.execPath, ['--no-experimental-strip-types', '-e', REQUIRE_TS], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    // Its own process group, so that a test can signal the group as a process manager does.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let pending = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    lines.push(...parts.filter((line) => line.trim() !== ''));
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (lines.some((line) => line.includes('Advanced Notes API on'))) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
    void exited.then(({ code }) => {
      clearInterval(timer);
      reject(new Error(`The server exited with ${code} before it started:\n${stderr}\n${lines.join('\n')}`));
    });
  });
  return { process: child, lines, exited };
}
