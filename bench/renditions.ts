import 'reflect-metadata';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { issueToken } from '../src/auth/dev-token';
import { loadAppConfig } from '../src/config/app-config';
import { dataSourceOptions } from '../src/database/database.options';
import { decode, decoderVersion, isAacInMp4, probeMedia, type DecoderLimits } from '../src/renditions/ffmpeg';
import { Rendition, RenditionSource, RenditionStatus } from '../src/renditions/rendition.entity';
import { RENDITION_FORMATS } from '../src/renditions/rendition-formats';
import { WAVEFORM_SAMPLE_RATE, WaveformBuilder } from '../src/renditions/waveform';
import { benchEnv, startS3rverProcess, startServer } from './children';
import { fmt, fmtRatio, load, median, type Measurement } from './measure';
import { seed } from './seed';
import { printTable } from './table';

/**
 * `npm run bench` (renditions part): how fast the job renders (seconds of audio per CPU second of the
 * decoder, for a voice recording in three formats, through the job's own steps: ffprobe of the original,
 * one decode to AAC-LC and the waveform's PCM, ffprobe of the result), and what a running job costs the
 * API (playback p99 while the app makes a rendition, against none, rounds alternated).
 */
const MINUTES = Number(process.env.BENCH_RENDITION_MINUTES ?? 10);
const JOB_MINUTES = Number(process.env.BENCH_RENDITION_JOB_MINUTES ?? 30);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 20;
const OWNER = 'bench-user';
const CLIPS = 200;
const TOOLS = { ffmpeg: 'ffmpeg', ffprobe: 'ffprobe' };
const LIMITS: DecoderLimits = { timeoutMs: 600_000, cpuSeconds: 600, memoryMiB: 1024 };
/** Speech-like: pink noise in the telephone band, its loudness swelling and fading like syllables. */
const VOICE =
  "anoisesrc=r=16000:c=pink:a=0.3,highpass=f=200,lowpass=f=3400,volume='0.15+0.85*abs(sin(2*PI*1.7*t)*sin(2*PI*0.23*t))':eval=frame";

const FORMATS = [
  { name: 'WAV (PCM 16 kHz)', file: 'voice.wav', demuxer: 'wav', args: ['-c:a', 'pcm_s16le', '-f', 'wav'] },
  {
    name: 'WebM/Opus 24k',
    file: 'voice.webm',
    demuxer: 'matroska',
    args: ['-c:a', 'libopus', '-b:a', '24k', '-f', 'webm'],
  },
  { name: 'MP3 32k', file: 'voice.mp3', demuxer: 'mp3', args: ['-c:a', 'libmp3lame', '-b:a', '32k', '-f', 'mp3'] },
];

/** CPU seconds of this process's children that have ended (Linux: /proc/self/stat's cutime + cstime). */
function childCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  // After "pid (comm) ": state is field 3, so cutime (16) and cstime (17) are at 13 and 14 here.
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

function makeVoice(path: string, minutes: number, args: string[]): void {
  execFileSync('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    VOICE,
    '-t',
    String(minutes * 60),
    '-ac',
    '1',
    ...args,
    path,
  ]);
}

async function renderingSpeed(dir: string): Promise<void> {
  const rows: string[][] = [];
  for (const format of FORMATS) {
    const input = join(dir, format.file);
    makeVoice(input, MINUTES, format.args);
    const output = join(dir, `${format.file}.m4a`);
    const cpuBefore = childCpuSeconds();
    const started = performance.now();
    await probeMedia(TOOLS, input, format.demuxer, { limits: LIMITS });
    const waveform = new WaveformBuilder();
    const spec = RENDITION_FORMATS.m4a;
    await decode(
      TOOLS,
      {
        input: { path: input, demuxer: format.demuxer },
        rendition: { path: output, sampleRate: spec.sampleRate, bitrate: spec.bitrate },
        pcm: { sampleRate: WAVEFORM_SAMPLE_RATE, onPcm: (chunk) => waveform.push(chunk) },
      },
      LIMITS,
    );
    const made = await probeMedia(TOOLS, output, 'mov', { limits: LIMITS });
    const wall = (performance.now() - started) / 1000;
    const cpu = childCpuSeconds() - cpuBefore;
    if (!isAacInMp4(made)) throw new Error(`${format.name}: the rendition is not AAC-LC in MP4`);
    const audioSeconds = MINUTES * 60;
    rows.push([
      format.name,
      `${((await stat(input)).size / 1e6).toFixed(1)} MB`,
      `${(made.durationMs! / 1000).toFixed(1)} s`,
      `${cpu.toFixed(2)} s`,
      `${wall.toFixed(2)} s`,
      `${Math.round(audioSeconds / cpu)}`,
      `${((await stat(output)).size / 1e6).toFixed(2)} MB`,
    ]);
  }
  console.log(
    `\nRendering a ${MINUTES}-minute voice recording (the job's steps; decoder CPU of ffprobe + ffmpeg, nice 10, 1 thread)`,
  );
  printTable(['original', 'size', 'rendition', 'CPU', 'wall', 'audio s per CPU s', 'rendition size'], rows);
}

async function playbackWhileRendering(dir: string): Promise<void> {
  const children: ChildProcess[] = [];
  try {
    const { port } = await startS3rverProcess(join(dir, 's3'), 'bench', children);
    const env = { ...benchEnv(`sqlite:${join(dir, 'bench.sqlite')}`, port), RENDITION_CONCURRENCY: '1' };
    const { clipIds } = await seed(env, OWNER, 10, CLIPS);
    // The seeded clips have no objects: their renditions are recorded as made, so the job only sees ours.
    const dataSource = await new DataSource({
      ...dataSourceOptions(loadAppConfig(env).database),
      logging: false,
    }).initialize();
    const now = new Date();
    await dataSource.getRepository(Rendition).insert(
      clipIds.map((clipId) =>
        Object.assign(new Rendition(), {
          clipId,
          format: 'm4a',
          ownerId: OWNER,
          status: RenditionStatus.Ready,
          source: RenditionSource.Original,
          storageKey: `bench/audio-clips/${clipId}.universal.m4a`,
          bytes: 1,
          durationMs: 1,
          failureReason: null,
          attempts: 1,
          claimToken: null,
          claimedUntil: null,
          createdAt: now,
          updatedAt: now,
        }),
      ),
    );
    await dataSource.destroy();
    const baseUrl = await startServer('app', env, children);
    const token = await issueToken(loadAppConfig(env).auth, OWNER);
    const auth = { authorization: `Bearer ${token}` };
    const jobFile = join(dir, 'job.webm');
    makeVoice(jobFile, JOB_MINUTES, FORMATS[1].args);
    const jobBytes = await readFile(jobFile);

    const clipState = async (id: string) => {
      const response = await fetch(`${baseUrl}/api/audio-clips/${id}`, { headers: auth });
      return ((await response.json()) as { renditions: { status: string }[] }).renditions[0]?.status;
    };
    const startJob = async (): Promise<string> => {
      const created = (await (
        await fetch(`${baseUrl}/api/audio-clips`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ mime_type: 'audio/webm', bytes: jobBytes.length, duration_ms: JOB_MINUTES * 60_000 }),
        })
      ).json()) as { clip: { id: string }; upload: { url: string; headers: Record<string, string> } };
      await fetch(created.upload.url, { method: 'PUT', headers: created.upload.headers, body: jobBytes });
      const completed = await fetch(`${baseUrl}/api/audio-clips/${created.clip.id}/complete`, {
        method: 'POST',
        headers: auth,
      });
      if (completed.status !== 200) throw new Error(`complete answered ${completed.status}`);
      return created.clip.id;
    };
    const playback = (warm: boolean) =>
      load(
        baseUrl,
        'GET',
        () => `/api/audio-clips/${clipIds[Math.floor(Math.random() * clipIds.length)]}/playback`,
        undefined,
        auth,
        warm,
        undefined,
        { seconds: SECONDS, connections: CONNECTIONS, firstWarmup: 0 },
      );

    const none: Measurement[] = [];
    const withJob: Measurement[] = [];
    let cutShort = 0;
    await playback(true);
    for (let round = 0; round < ROUNDS; round++) {
      none.push(await playback(false));
      const job = await startJob();
      // The worker is woken by the completion; the job runs while the load does.
      await new Promise((resolve) => setTimeout(resolve, 300));
      withJob.push(await playback(false));
      if ((await clipState(job)) !== 'pending') cutShort += 1;
      for (const stopAt = Date.now() + 300_000; (await clipState(job)) === 'pending' && Date.now() < stopAt;)
        await new Promise((resolve) => setTimeout(resolve, 500));
      if ((await clipState(job)) !== 'ready') throw new Error(`the job's rendition ended ${await clipState(job)}`);
    }
    console.log(
      `\nPlayback while a ${JOB_MINUTES}-minute WebM/Opus recording is rendered in the same app (${CONNECTIONS} connections, ${SECONDS} s x ${ROUNDS} rounds, medians)`,
    );
    printTable(
      ['', 'req/s · p50 · p99 (medians)'],
      [
        ['no job', fmt(none)],
        ['one job', fmt(withJob)],
      ],
    );
    const ratios = withJob.map((measurement, round) => measurement.p99 / none[round].p99);
    console.log(
      `p99 with one job / without, per round: ${fmtRatio({ median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) })} (target: at most 1.5x)`,
    );
    if (cutShort > 0)
      console.log(
        `(in ${cutShort} of ${ROUNDS} rounds the job ended before the load did: make BENCH_RENDITION_JOB_MINUTES longer)`,
      );
  } finally {
    for (const child of children) child.kill();
  }
}

async function main(): Promise<void> {
  const version = await decoderVersion(TOOLS);
  if (version === null) {
    console.log('\nRenditions: NOT MEASURED, ffmpeg/ffprobe are not installed (apt-get install ffmpeg).');
    return;
  }
  console.log(`\nRenditions, with ${version}`);
  const dir = await mkdtemp(join(tmpdir(), 'an-bench-renditions-'));
  try {
    await renderingSpeed(dir);
    await playbackWhileRendering(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
