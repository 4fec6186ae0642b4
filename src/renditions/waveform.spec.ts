import { WAVEFORM_LENGTH, WAVEFORM_SAMPLE_RATE, WaveformBuilder, waveformOfBlocks } from './waveform';

function pcm(samples: number[]): Buffer {
  const buffer = Buffer.alloc(samples.length * 2);
  samples.forEach((value, index) => buffer.writeInt16LE(value, index * 2));
  return buffer;
}

describe('waveform', () => {
  it('is 100 zeros for silence, and for nothing at all', () => {
    const builder = new WaveformBuilder();
    builder.push(Buffer.alloc(WAVEFORM_SAMPLE_RATE * 2 * 3));
    expect(builder.finish()).toEqual(new Array(WAVEFORM_LENGTH).fill(0));
    expect(new WaveformBuilder().finish()).toEqual(new Array(WAVEFORM_LENGTH).fill(0));
  });

  it('puts 255 on the loudest slice and scales the others to it', () => {
    // 10 s: silent but for a quiet second (2 to 3 s) and a loud one (6 to 7 s).
    const samples = new Array<number>(WAVEFORM_SAMPLE_RATE * 10).fill(0);
    for (let i = 2 * WAVEFORM_SAMPLE_RATE; i < 3 * WAVEFORM_SAMPLE_RATE; i++) samples[i] = i % 2 ? 1000 : -1000;
    for (let i = 6 * WAVEFORM_SAMPLE_RATE; i < 7 * WAVEFORM_SAMPLE_RATE; i++) samples[i] = i % 2 ? 20000 : -20000;
    const builder = new WaveformBuilder();
    builder.push(pcm(samples));
    const waveform = builder.finish();
    expect(waveform).toHaveLength(WAVEFORM_LENGTH);
    expect(waveform.slice(60, 70)).toEqual(new Array(10).fill(255));
    expect(waveform.slice(20, 30)).toEqual(new Array(10).fill(Math.round((1000 * 255) / 20000)));
    expect(
      waveform.filter((value, index) => value !== 0 && !(index >= 20 && index < 30) && !(index >= 60 && index < 70)),
    ).toEqual([]);
    expect(builder.durationMs).toBe(10_000);
  });

  it('reads samples split across chunks', () => {
    const bytes = pcm([0, -32768, 5, 32767]);
    const builder = new WaveformBuilder();
    for (const byte of bytes) builder.push(Buffer.from([byte]));
    expect(builder.samples).toBe(4);
    expect(Math.max(...builder.finish())).toBe(255);
  });

  it('repeats blocks for a recording shorter than 100 blocks', () => {
    expect(waveformOfBlocks([0, 10])).toEqual([...new Array(50).fill(0), ...new Array(50).fill(255)]);
  });
});
