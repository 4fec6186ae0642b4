import { randomBytes } from 'node:crypto';

/**
 * A PCM WAV file written in code: 8 kHz, 16-bit mono, `seconds` long. With `noise` the samples are
 * random, so two files of one length still differ byte for byte.
 */
export function wav(seconds: number, options: { noise?: boolean } = {}): Buffer {
  const dataBytes = Math.round(8000 * seconds) * 2;
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(16000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(dataBytes, 40);
  return Buffer.concat([header, options.noise ? randomBytes(dataBytes) : Buffer.alloc(dataBytes)]);
}

/**
 * A PCM WAV (8 kHz, 16-bit mono) `seconds` long, silent but for one loud second (a 440 Hz square wave at
 * full scale) starting at `loudFrom` seconds: its waveform must peak there.
 */
export function wavWithLoudSecond(seconds: number, loudFrom: number): Buffer {
  const silent = wav(seconds);
  const first = Math.round(8000 * loudFrom);
  for (let sample = first; sample < first + 8000; sample++) {
    silent.writeInt16LE(Math.floor(sample / 9) % 2 === 0 ? 30000 : -30000, 44 + sample * 2);
  }
  return silent;
}
