import { DecoderFailed, DecoderTimeout, runDecoder } from './ffmpeg';

const limits = { timeoutMs: 10_000, cpuSeconds: 5, memoryMiB: 256 };

describe('runDecoder: the limits every decoder process runs under', () => {
  it('kills a process that runs past the wall-clock limit', async () => {
    const started = Date.now();
    await expect(runDecoder('/bin/sleep', ['30'], { limits: { ...limits, timeoutMs: 300 } })).rejects.toBeInstanceOf(
      DecoderTimeout,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('lets the kernel stop a process past its CPU seconds', async () => {
    const spin = runDecoder('/bin/sh', ['-c', 'while :; do :; done'], { limits: { ...limits, cpuSeconds: 1 } });
    await expect(spin).rejects.toBeInstanceOf(DecoderFailed);
    await expect(spin).rejects.toThrow(/CPU-time limit \(1 s\)/);
  });

  it('caps the address space (ulimit -v) and lowers the priority (nice 10)', async () => {
    const out = await runDecoder('/bin/sh', ['-c', 'ulimit -v; ulimit -t; nice'], { limits });
    expect(out.trim().split('\n')).toEqual([String(256 * 1024), '5', '10']);
  });

  it('passes arguments as arguments, never through the shell', async () => {
    const out = await runDecoder('/bin/echo', ['$(id)', '; rm -rf /', '`x`'], { limits });
    expect(out).toBe('$(id) ; rm -rf / `x`\n');
  });

  it('stops a process when its job is aborted', async () => {
    const controller = new AbortController();
    const run = runDecoder('/bin/sleep', ['30'], { limits, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stopping')), 100);
    await expect(run).rejects.toThrow(/stopped: Error: stopping/);
  });

  it('reports the last line of what a failing decoder said', async () => {
    await expect(
      runDecoder('/bin/sh', ['-c', 'echo first >&2; echo "Invalid data found" >&2; exit 1'], { limits }),
    ).rejects.toThrow('the decoder failed (exit 1): Invalid data found');
  });
});
