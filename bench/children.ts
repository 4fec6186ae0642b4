import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** Starts one of bench/servers.ts's servers in a child process of its own; resolves with its base URL once it listens. */
export async function startServer(
  kind: 'app' | 'app-pair' | 'baseline' | 'pg-baseline' | 'obvious',
  env: Record<string, string>,
  children: ChildProcess[],
): Promise<string> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = fork(join(__dirname, 'servers.js'), [kind, String(port)], {
    env: { ...process.env, ...env },
    // The app's JSON log goes nowhere (its lines are still written); errors still show on stderr.
    stdio: ['ignore', kind.startsWith('app') ? 'ignore' : 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return `http://127.0.0.1:${port}`;
}
