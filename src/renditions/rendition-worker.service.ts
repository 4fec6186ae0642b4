import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { AudioClip, DurationSource } from '../audio-clips/audio-clip.entity';
import { AudioClipsRepository } from '../audio-clips/audio-clips.repository';
import { probeAudio, type AudioContainer, type RangeReader } from '../audio-clips/audio-probe';
import { StorageDeletionsService } from '../audio-clips/deletions/storage-deletions.service';
import { ShutdownState } from '../operations/shutdown-state';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage-driver';
import { DecoderAvailability } from './decoder-availability';
import {
  decode,
  DecoderFailed,
  DecoderTimeout,
  DEMUXER_BY_CONTAINER,
  isAacInMp4,
  probeMedia,
  type DecoderLimits,
} from './ffmpeg';
import { RenditionSource, RenditionStatus, type Rendition } from './rendition.entity';
import { durationTolerance, RENDITION_FORMATS, type RenditionFormat } from './rendition-formats';
import { RenditionsRepository } from './renditions.repository';
import { RenditionsService } from './renditions.service';
import { WAVEFORM_SAMPLE_RATE, WaveformBuilder } from './waveform';

/** How often each instance looks for work (besides being woken when one of its clips becomes ready). */
const POLL_MS = 2_000;
/** Ready clips without rows (a crash between the two writes) are looked for this often. */
const BACKFILL_EVERY_POLLS = 15;
/** The claim outlives the job's own limit by this much: then the instance is taken for dead. */
const LEASE_MARGIN_MS = 10_000;
/** Tries, crashes included, before a rendition is given up as failed. */
const MAX_ATTEMPTS = 3;
/** A job that could not reach the store is taken up again after this. */
const STORE_RETRY_MS = 30_000;
/** Where jobs keep their two temp files (the original, the rendition), one folder per job. */
const TEMP_ROOT = join(tmpdir(), 'advanced-notes-renditions');

/** A job's ending that is not the rendition's fault: the job is given back and tried again. */
class JobInterrupted extends Error {}

interface Outcome {
  status: RenditionStatus.Ready | RenditionStatus.Failed;
  source: RenditionSource;
  bytes: number | null;
  durationMs: number | null;
  failureReason: string | null;
}

/**
 * Makes renditions and waveforms in the background, on every instance with ffmpeg, at most
 * RENDITION_CONCURRENCY at a time. Work is found in the database and claimed there with a lease, so of
 * several instances exactly one makes a rendition, and one killed mid-job has its job taken up again once
 * its lease runs out. Each job streams the original from the store into one temp file, probes it, decodes
 * it once under a wall-clock timeout, a CPU-time and a memory limit and at a lower priority (the rendition
 * and the waveform's PCM come out of the same decode), checks the result with ffprobe, and streams it back
 * into the store. A failure marks the rendition failed with its reason; the clip itself is never touched
 * but for its waveform.
 */
@Injectable()
export class RenditionWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(RenditionWorker.name);
  private readonly running = new Map<string, Promise<void>>();
  private readonly stopController = new AbortController();
  private timer?: NodeJS.Timeout;
  private polls = 0;
  private looking: Promise<void> | null = null;
  private lookAgain = false;

  constructor(
    private readonly renditions: RenditionsRepository,
    private readonly clips: AudioClipsRepository,
    private readonly deletions: StorageDeletionsService,
    private readonly decoder: DecoderAvailability,
    private readonly config: AppConfig,
    private readonly shutdown: ShutdownState,
    renditionsService: RenditionsService,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {
    renditionsService.onWork(() => this.wake());
  }

  private get limits(): DecoderLimits {
    const seconds = this.config.renditions.timeoutSeconds;
    return { timeoutMs: seconds * 1000, cpuSeconds: seconds, memoryMiB: this.config.renditions.memoryMiB };
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.decoder.available || this.config.renditions.concurrency === 0) return;
    await this.removeStaleTempFolders();
    this.timer = setInterval(() => this.wake(), POLL_MS);
    this.timer.unref();
    this.shutdown.signal.addEventListener('abort', () => this.stop(), { once: true });
    this.wake();
  }

  /** Stops looking for work and gives back the jobs under way (another instance takes them up). */
  async beforeApplicationShutdown(): Promise<void> {
    this.stop();
    await this.looking?.catch(() => undefined);
    await Promise.allSettled(this.running.values());
  }

  private stop(): void {
    clearInterval(this.timer);
    this.stopController.abort(new JobInterrupted('the server is stopping'));
  }

  /** Looks for work now (one look at a time; a wake during a look makes another). */
  wake(): void {
    if (this.stopController.signal.aborted || !this.decoder.available || this.config.renditions.concurrency === 0)
      return;
    if (this.looking) {
      this.lookAgain = true;
      return;
    }
    this.looking = this.look()
      .catch((error: unknown) => this.logger.warn(`Looking for renditions to make failed: ${String(error)}`))
      .finally(() => {
        this.looking = null;
        if (this.lookAgain) {
          this.lookAgain = false;
          this.wake();
        }
      });
  }

  /** Whatever jobs this instance has room for, claimed and started (not awaited). */
  private async look(): Promise<void> {
    if (this.polls++ % BACKFILL_EVERY_POLLS === 0) {
      const now = new Date();
      // A clip becomes ready within the upload TTL of its creation; a day more covers a slow completion.
      const createdAfter = new Date(now.getTime() - (this.config.lifecycle.uploadTtlSeconds + 86_400) * 1000);
      for (const clip of await this.renditions.readyClipsWithoutRenditions(createdAfter, 100))
        await this.renditions.insertPending(clip, now);
    }
    const free = this.config.renditions.concurrency - this.running.size;
    if (free <= 0) return;
    const now = new Date();
    const candidates = await this.renditions.findClaimable(now, free * 4);
    for (const job of candidates) {
      if (this.running.size >= this.config.renditions.concurrency || this.stopController.signal.aborted) break;
      const id = `${job.clipId}/${job.format}`;
      if (this.running.has(id)) continue;
      const token = randomUUID();
      const leaseEnd = new Date(now.getTime() + this.limits.timeoutMs + LEASE_MARGIN_MS);
      if (!(await this.renditions.claim(job, token, now, leaseEnd))) continue; // another instance took it
      const run = this.run({ ...job, attempts: job.attempts + 1 }, token, leaseEnd).finally(() => {
        this.running.delete(id);
        this.wake();
      });
      this.running.set(id, run);
    }
  }

  /** One claimed job, to its end: made, failed, or given back. Never throws. */
  private async run(job: Rendition, token: string, leaseEnd: Date): Promise<void> {
    const started = performance.now();
    const deadline = AbortSignal.timeout(this.limits.timeoutMs);
    const signal = AbortSignal.any([deadline, this.stopController.signal]);
    let outcome: Outcome;
    try {
      if (job.attempts > MAX_ATTEMPTS) {
        outcome = failed(
          `given up after ${MAX_ATTEMPTS} tries that ended with the server (a crash or a restart mid-job)`,
        );
      } else {
        outcome = await this.make(job, token, leaseEnd, signal);
      }
    } catch (error) {
      if (this.stopController.signal.aborted) {
        // Stopping: the job goes back as if never begun; the next instance makes it.
        await this.renditions.release(job, token, null, true).catch(() => undefined);
        return;
      }
      if (deadline.aborted || error instanceof DecoderTimeout) {
        outcome = failed(`the job ran past its ${this.config.renditions.timeoutSeconds} s limit and was stopped`);
      } else if (error instanceof DecoderFailed) {
        outcome = failed(error.message);
      } else if (job.attempts < MAX_ATTEMPTS) {
        this.logger.warn(`Rendition of clip ${job.clipId} interrupted, tried again later: ${String(error)}`);
        await this.renditions.release(job, token, new Date(Date.now() + STORE_RETRY_MS), false).catch(() => undefined);
        return;
      } else {
        outcome = failed(
          `gave up after ${MAX_ATTEMPTS} tries: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    const finished = await this.renditions
      .finish(job, token, { ...outcome, storageKey: job.storageKey }, new Date())
      .catch((error: unknown) => {
        this.logger.warn(`Recording the rendition of clip ${job.clipId} failed: ${String(error)}`);
        return false;
      });
    if (!finished && outcome.status === RenditionStatus.Ready && outcome.source === RenditionSource.Rendition) {
      // The clip was deleted meanwhile (its row went with it): its outbox entry removes the object now.
      await this.deletions.deleteSoon([job.storageKey]);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    if (outcome.status === RenditionStatus.Failed)
      this.logger.warn(
        `Rendition ${job.format} of clip ${job.clipId} failed in ${seconds} s: ${outcome.failureReason}`,
      );
    else this.logger.log(`Rendition ${job.format} of clip ${job.clipId} made in ${seconds} s (${outcome.source})`);
  }

  private async make(job: Rendition, token: string, leaseEnd: Date, signal: AbortSignal): Promise<Outcome> {
    const clip = await this.clips.findReady(job.clipId);
    if (!clip) return failed('the clip is not ready');
    await mkdir(TEMP_ROOT, { recursive: true });
    const folder = await mkdtemp(join(TEMP_ROOT, 'job-'));
    try {
      return await this.makeIn(folder, clip, job, leaseEnd, signal);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }

  private async makeIn(
    folder: string,
    clip: AudioClip,
    job: Rendition,
    leaseEnd: Date,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const format = job.format as RenditionFormat;
    const spec = RENDITION_FORMATS[format];
    const startedAt = Date.now();
    const limits = (): DecoderLimits => ({
      ...this.limits,
      timeoutMs: Math.max(1, this.limits.timeoutMs - (Date.now() - startedAt)),
    });

    // 1. The original, streamed from the store into the job's one input file.
    const input = join(folder, 'original');
    const source = await this.storage.openRead(clip.storageKey, signal);
    if (!source) throw new Error(`the original ${clip.storageKey} is not in the store`);
    await pipeline(source, createWriteStream(input, { flags: 'wx' }), { signal });

    // 2. Which container it is, by our own probe (as completion found it): ffmpeg is told, never guesses.
    const { size } = await stat(input);
    const probe = await probeAudio(await fileReader(input, size), clip.mimeType);
    if (probe.kind !== 'audio') return failed(`the original is not audio: ${probe.reason}`);
    const demuxer = DEMUXER_BY_CONTAINER[probe.container as AudioContainer];
    const original = await probeMedia(this.decoder.tools, input, demuxer, { limits: limits(), signal });
    if (!original.audio) return failed('the original has no audio stream the decoder can read');
    const keepOriginal = format === 'm4a' && isAacInMp4(original);

    // 3. One decode: the rendition (unless the original is kept) and the waveform's PCM.
    const waveform = new WaveformBuilder();
    const output = join(folder, `rendition.${format}`);
    await decode(
      this.decoder.tools,
      {
        input: { path: input, demuxer },
        rendition: keepOriginal ? undefined : { path: output, sampleRate: spec.sampleRate, bitrate: spec.bitrate },
        pcm: { sampleRate: WAVEFORM_SAMPLE_RATE, onPcm: (chunk) => waveform.push(chunk) },
      },
      limits(),
      signal,
    );
    await this.clips.setWaveform(clip.id, waveform.finish(), new Date());
    if (keepOriginal) {
      return {
        status: RenditionStatus.Ready,
        source: RenditionSource.Original,
        bytes: clip.bytes,
        durationMs: original.durationMs ?? clip.durationMs,
        failureReason: null,
      };
    }

    // 4. Checked: AAC-LC in MP4, mono, as long as the original.
    const made = await probeMedia(this.decoder.tools, output, 'mov', { limits: limits(), signal });
    const expectedMs =
      clip.durationSource === DurationSource.Measured ? clip.durationMs : (original.durationMs ?? waveform.durationMs);
    if (!isAacInMp4(made) || made.audio?.channels !== 1)
      return failed(
        `the decoder made ${made.formatName} with ${made.audio?.codec ?? 'no audio'}, not mono AAC-LC in MP4`,
      );
    if (made.durationMs === null || Math.abs(made.durationMs - expectedMs) > durationTolerance(expectedMs)) {
      return failed(
        `the rendition lasts ${made.durationMs ?? 'an unknown time'} ms but the original ${expectedMs} ms ` +
          `(more than the ${durationTolerance(expectedMs)} ms allowed)`,
      );
    }

    // 5. Into the store: the key is recorded for deletion first (due when the lease ends), so a crash
    // or the clip's deletion never leaves it behind; the outbox leaves it while a rendition uses it.
    const now = new Date();
    await this.deletions.record([{ storageKey: job.storageKey, deleteAfter: now }], now, leaseEnd);
    await this.storage.writeStream(job.storageKey, createReadStream(output, { signal }), {
      contentType: spec.mimeType,
    });
    return {
      status: RenditionStatus.Ready,
      source: RenditionSource.Rendition,
      bytes: (await stat(output)).size,
      durationMs: made.durationMs,
      failureReason: null,
    };
  }

  /** Job folders of a process that died mid-job (on this machine): older than any job can run. */
  private async removeStaleTempFolders(): Promise<void> {
    const before = Date.now() - 2 * (this.limits.timeoutMs + LEASE_MARGIN_MS);
    const names = await readdir(TEMP_ROOT).catch(() => [] as string[]);
    for (const name of names) {
      const path = join(TEMP_ROOT, name);
      const stats = await stat(path).catch(() => null);
      if (stats && stats.mtimeMs < before) await rm(path, { recursive: true, force: true });
    }
  }
}

function failed(reason: string): Outcome {
  return {
    status: RenditionStatus.Failed,
    source: RenditionSource.Rendition,
    bytes: null,
    durationMs: null,
    failureReason: reason.slice(0, 500),
  };
}

/** Our probe reads ranges; here from the job's own file. */
async function fileReader(path: string, size: number): Promise<RangeReader> {
  return {
    size,
    read: async (start, endInclusive) => {
      const file = await open(path, 'r');
      try {
        const length = Math.max(0, Math.min(endInclusive, size - 1) - start + 1);
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await file.read(buffer, 0, length, start);
        return buffer.subarray(0, bytesRead);
      } finally {
        await file.close();
      }
    },
  };
}
