import { spawn } from 'node:child_process';
import type { AudioContainer } from '../audio-clips/audio-probe';

/** Where the decoder runs: Debian's ffmpeg and ffprobe (paths from FFMPEG_PATH / FFPROBE_PATH). */
export interface DecoderTools {
  ffmpeg: string;
  ffprobe: string;
}

/** What one decoder process may use. */
export interface DecoderLimits {
  /** Wall clock: the process is killed past it. */
  timeoutMs: number;
  /** CPU seconds (`ulimit -t`): the kernel kills it past them, even if this process is gone. */
  cpuSeconds: number;
  /** Address space in MiB (`ulimit -v`). */
  memoryMiB: number;
}

/** The process ran past its wall-clock limit and was killed. */
export class DecoderTimeout extends Error {
  override name = 'DecoderTimeout';
}

/** The process ended badly (a crash, a limit, bad input): `reason` is what the rendition records. */
export class DecoderFailed extends Error {
  override name = 'DecoderFailed';
}

/**
 * ffmpeg's demuxer for each container our own probe tells apart: the input format is always forced,
 * never guessed by ffmpeg (which would also accept concat lists, playlists and images).
 */
export const DEMUXER_BY_CONTAINER: Readonly<Record<AudioContainer, string>> = {
  mp4: 'mov',
  mpeg: 'mp3',
  adts: 'aac',
  wav: 'wav',
  ogg: 'ogg',
  matroska: 'matroska',
  flac: 'flac',
  amr: 'amr',
};

/**
 * Only files (given as `file:` URLs, each one the job's own temp file) and pipes: no concat, playlist,
 * http, tcp or other protocol can be reached from inside a container.
 */
const INPUT_PROTOCOLS = ['-protocol_whitelist', 'file,pipe'];

/** The version line of ffmpeg, or null when it cannot be run here. */
export async function decoderVersion(tools: DecoderTools): Promise<string | null> {
  const run = (binary: string) =>
    new Promise<string | null>((resolve) => {
      const child = spawn(binary, ['-version'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('error', () => resolve(null));
      child.on('close', (code) => resolve(code === 0 ? (out.split('\n')[0] ?? '') : null));
    });
  const [ffmpeg, ffprobe] = await Promise.all([run(tools.ffmpeg), run(tools.ffprobe)]);
  return ffmpeg !== null && ffprobe !== null ? ffmpeg : null;
}

export interface RunOptions {
  limits: DecoderLimits;
  signal?: AbortSignal;
  /** Receives stdout as it comes; without it stdout is collected and returned. */
  onStdout?: (chunk: Buffer) => void;
}

/**
 * Runs a decoder under the limits: a shell sets `ulimit -t` and `ulimit -v`, then `exec`s `nice -n 10`,
 * which `exec`s the binary, so the one process id is killed on the timeout or an abort. Arguments are
 * passed as arguments (`"$@"`), never through the shell's parser.
 */
export function runDecoder(binary: string, args: readonly string[], options: RunOptions): Promise<string> {
  const { limits } = options;
  const script = 'ulimit -t "$1" && ulimit -v "$2" && shift 2 && exec nice -n 10 "$@"';
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/bin/sh',
      ['-c', script, 'sh', String(limits.cpuSeconds), String(limits.memoryMiB * 1024), binary, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let aborted = false;
    const kill = () => child.kill('SIGKILL');
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, limits.timeoutMs);
    const onAbort = () => {
      aborted = true;
      kill();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      if (options.onStdout) options.onStdout(chunk);
      else stdout += chunk.toString();
    });
    // The last 2 KB is enough to say why it failed.
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2048)));
    child.on('error', (error) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (timedOut)
        return reject(
          new DecoderTimeout(`the decoder ran past its ${limits.timeoutMs / 1000} s limit and was stopped`),
        );
      if (aborted) return reject(new Error(`the decoder was stopped: ${String(options.signal?.reason)}`));
      if (code === 0) return resolve(stdout);
      const why =
        signal === 'SIGXCPU' || signal === 'SIGKILL'
          ? `the decoder was stopped by its CPU-time limit (${limits.cpuSeconds} s)`
          : `the decoder failed (${signal ?? `exit ${code}`})`;
      const detail = lastLine(stderr);
      reject(new DecoderFailed(detail ? `${why}: ${detail}` : why));
    });
  });
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').trim().slice(0, 300);
}

export interface ProbedMedia {
  formatName: string;
  durationMs: number | null;
  /** The first audio stream. */
  audio: { codec: string; profile: string | null; channels: number } | null;
}

interface FfprobeJson {
  format?: { format_name?: string; duration?: string };
  streams?: { codec_type?: string; codec_name?: string; profile?: string; channels?: number }[];
}

/** ffprobe of one local file, its demuxer forced. */
export async function probeMedia(
  tools: DecoderTools,
  path: string,
  demuxer: string,
  options: RunOptions,
): Promise<ProbedMedia> {
  const out = await runDecoder(
    tools.ffprobe,
    [
      '-v',
      'error',
      ...INPUT_PROTOCOLS,
      '-f',
      demuxer,
      '-show_entries',
      'format=format_name,duration:stream=codec_type,codec_name,profile,channels',
      '-of',
      'json',
      `file:${path}`,
    ],
    options,
  );
  const parsed = JSON.parse(out) as FfprobeJson;
  const seconds = Number(parsed.format?.duration);
  const audio = parsed.streams?.find((stream) => stream.codec_type === 'audio');
  return {
    formatName: parsed.format?.format_name ?? '',
    durationMs: Number.isFinite(seconds) ? Math.round(seconds * 1000) : null,
    audio: audio
      ? { codec: audio.codec_name ?? '', profile: audio.profile ?? null, channels: audio.channels ?? 0 }
      : null,
  };
}

/** AAC-LC in an MP4 container: what the universal rendition is, and what an original may already be. */
export function isAacInMp4(media: ProbedMedia): boolean {
  return media.formatName.split(',').includes('mp4') && media.audio?.codec === 'aac' && media.audio.profile === 'LC';
}

export interface DecodePlan {
  input: { path: string; demuxer: string };
  /** The rendition to write (AAC-LC, mono, fast-start MP4), or none when the original is kept. */
  rendition?: { path: string; sampleRate: number; bitrate: string };
  /** Mono s16le PCM at this rate, streamed to `onPcm` (for the waveform). */
  pcm: { sampleRate: number; onPcm: (chunk: Buffer) => void };
}

/** One decode of the original, feeding both outputs: the rendition file and the waveform's PCM. */
export async function decode(tools: DecoderTools, plan: DecodePlan, limits: DecoderLimits, signal?: AbortSignal) {
  const args = [
    '-nostdin',
    '-hide_banner',
    '-v',
    'error',
    // One thread: the job runs beside the API, and CPU time is the limit anyway.
    '-threads',
    '1',
    ...INPUT_PROTOCOLS,
    '-f',
    plan.input.demuxer,
    '-i',
    `file:${plan.input.path}`,
  ];
  if (plan.rendition) {
    args.push(
      ...['-map', '0:a:0', '-vn', '-sn', '-dn', '-map_metadata', '-1', '-ac', '1'],
      ...['-ar', String(plan.rendition.sampleRate), '-c:a', 'aac', '-profile:a', 'aac_low'],
      ...['-b:a', plan.rendition.bitrate, '-movflags', '+faststart', '-f', 'mp4', '-y', `file:${plan.rendition.path}`],
    );
  }
  args.push(
    ...['-map', '0:a:0', '-ac', '1', '-ar', String(plan.pcm.sampleRate), '-c:a', 'pcm_s16le', '-f', 's16le', 'pipe:1'],
  );
  await runDecoder(tools.ffmpeg, args, { limits, signal, onStdout: plan.pcm.onPcm });
}
