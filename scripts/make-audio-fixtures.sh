#!/usr/bin/env bash
# Regenerates test/fixtures/audio/: small, real recordings of a 440 Hz sine tone in every container a
# phone or browser uploads, plus non-audio files declared as audio. Each tone has a known length, which
# manifest.json records as true_duration_ms.
#
# Needs Debian's ffmpeg and sox (`apt-get install -y ffmpeg sox`). AMR is encoded by sox (through
# libopencore-amrnb, which Debian's sox loads at run time), because Debian's ffmpeg has no AMR encoder;
# when neither can encode AMR, the .amr and .3gp fixtures are skipped and left out of the manifest.
#
# Reruns on the same machine give the same bytes (sox runs with -R, its repeatable dither; ffmpeg with
# bitexact flags), but other ffmpeg or sox versions may not, so the committed files are the reference:
# rerun this only to add or replace fixtures, then rerun the unit and e2e specs.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=test/fixtures/audio
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

FF=(ffmpeg -hide_banner -loglevel error -y)
# A 440 Hz tone of $1 seconds at $2 Hz, mono.
tone() { echo "sine=frequency=440:sample_rate=$2:duration=$1"; }
# Drop ffmpeg's own tags so that re-runs only differ where the encoder does.
NOMETA=(-map_metadata -1 -fflags +bitexact -flags:a +bitexact)

entries=()
# add FILE MIME TRUE_DURATION_MS CONTAINER NOTES [EXPECTED_KIND [DURATION_IN_CONTAINER]]
# expected_kind: what a probe should answer for the declared type ("audio" or "not-audio").
# duration_in_container: false where neither a header nor a count of frame headers gives the length
# (a WebM without its Duration element: only the cluster and block timestamps would); null for the
# non-audio entries.
add() {
  local kind=${6:-audio}
  local states=${7:-$([[ $kind == audio ]] && echo true || echo null)}
  entries+=("$(printf '  {"file": "%s", "mime_type": "%s", "true_duration_ms": %s, "container": "%s", "expected_kind": "%s", "duration_in_container": %s, "notes": "%s"}' \
    "$1" "$2" "$3" "$4" "$kind" "$states" "$5")")
}

# --- MP4 / M4A (AAC-LC at 48 kHz, as phones record it). ffmpeg's mp4 muxer writes moov after mdat unless
# told otherwise, like iPhones do. The AAC encoder primes 1024 samples (21 ms at 48 kHz): the track's media
# duration includes them and only the edit list takes them out again.
"${FF[@]}" -f lavfi -i "$(tone 2 48000)" -ac 1 -c:a aac -b:a 24k "${NOMETA[@]}" -f ipod "$OUT/tone-2s-moov-at-end.m4a"
add tone-2s-moov-at-end.m4a audio/m4a 2000 "MP4 (M4A brand), moov after mdat" \
  "ffmpeg sine 440 Hz 48 kHz mono, aac 24k, -f ipod, no faststart: moov box at the end of the file"

"${FF[@]}" -f lavfi -i "$(tone 2 48000)" -ac 1 -c:a aac -b:a 24k "${NOMETA[@]}" -movflags +faststart -f ipod "$OUT/tone-2s-faststart.m4a"
add tone-2s-faststart.m4a audio/mp4 2000 "MP4 (M4A brand), moov before mdat" \
  "ffmpeg sine 440 Hz 48 kHz mono, aac 24k, -f ipod -movflags +faststart: moov box before mdat"

# --- MP3 (MPEG-1 Layer III at 48 kHz). One with an ID3v2 tag and a Xing/LAME header, one bare CBR stream.
# The frames cover LAME's 1105-sample delay plus padding up to a whole 1152-sample frame (24-48 ms at
# 48 kHz); nothing in a bare stream says how much of that is silence.
"${FF[@]}" -f lavfi -i "$(tone 3 48000)" -ac 1 -c:a libmp3lame -b:a 32k -fflags +bitexact -map_metadata -1 \
  -metadata title="Fixture tone" -id3v2_version 3 -write_xing 1 "$OUT/tone-3s-id3.mp3"
add tone-3s-id3.mp3 audio/mpeg 3000 "MPEG-1 Layer III with ID3v2.3 tag and Xing/LAME header" \
  "ffmpeg sine 440 Hz 48 kHz mono, libmp3lame CBR 32k, -id3v2_version 3 -metadata title=..., Xing header on (126 frames = 3.024 s)"

"${FF[@]}" -f lavfi -i "$(tone 2 48000)" -ac 1 -c:a libmp3lame -b:a 32k -fflags +bitexact -map_metadata -1 \
  -id3v2_version 0 -write_xing 0 "$OUT/tone-2s-no-id3.mp3"
add tone-2s-no-id3.mp3 audio/mp3 2000 "MPEG-1 Layer III, bare frames (no ID3, no Xing header)" \
  "ffmpeg sine 440 Hz 48 kHz mono, libmp3lame CBR 32k, -id3v2_version 0 -write_xing 0: duration only from frame count or size (85 frames = 2.040 s)"

# --- Ogg: Vorbis and Opus.
"${FF[@]}" -f lavfi -i "$(tone 2 16000)" -ac 1 -c:a libvorbis -q:a 0 "${NOMETA[@]}" -f ogg "$OUT/tone-2s-vorbis.ogg"
add tone-2s-vorbis.ogg audio/ogg 2000 "Ogg Vorbis" "ffmpeg sine 440 Hz 16 kHz mono, libvorbis -q:a 0"

"${FF[@]}" -f lavfi -i "$(tone 2 16000)" -ac 1 -c:a libopus -b:a 16k "${NOMETA[@]}" -f ogg "$OUT/tone-2s.opus"
add tone-2s.opus audio/opus 2000 "Ogg Opus" "ffmpeg sine 440 Hz 16 kHz mono, libopus 16k, -f ogg (48 kHz granules, pre-skip 312)"

# --- WebM (Opus). ffmpeg on a seekable file writes Duration, SeekHead and Cues; written to a pipe it
# cannot go back, so it leaves them out, as browsers' MediaRecorder does.
"${FF[@]}" -f lavfi -i "$(tone 2 48000)" -ac 1 -c:a libopus -b:a 16k "${NOMETA[@]}" -f webm "$OUT/tone-2s.webm"
add tone-2s.webm audio/webm 2000 "WebM (Matroska), Opus, with Segment Duration" \
  "ffmpeg sine 440 Hz 48 kHz mono, libopus 16k, -f webm to a seekable file: Info/Duration present"

"${FF[@]}" -f lavfi -i "$(tone 2 48000)" -ac 1 -c:a libopus -b:a 16k "${NOMETA[@]}" -f webm pipe:1 > "$OUT/tone-2s-no-duration.webm"
add tone-2s-no-duration.webm "audio/webm;codecs=opus" 2000 "WebM (Matroska), Opus, no Duration, no Cues (MediaRecorder-like)" \
  "ffmpeg sine 440 Hz 48 kHz mono, libopus 16k, -f webm written to a pipe: no Duration element, so the container states no duration" \
  audio false

# --- FLAC, raw ADTS AAC, WAV.
sox -R -n -r 8000 -c 1 -b 16 "$OUT/tone-2s.flac" synth 2 sine 440 vol 0.1
add tone-2s.flac audio/flac 2000 "FLAC (native)" "sox -R -n -r 8000 -c 1 -b 16 tone-2s.flac synth 2 sine 440 vol 0.1 (STREAMINFO holds the sample count)"

# ADTS has no place for the encoder's 1024 priming samples either: 95 frames of 1024 = 2.027 s at 48 kHz.
"${FF[@]}" -f lavfi -i "$(tone 2 48000)" -ac 1 -c:a aac -b:a 24k "${NOMETA[@]}" -f adts "$OUT/tone-2s.aac"
add tone-2s.aac audio/aac 2000 "ADTS (raw AAC-LC frames)" \
  "ffmpeg sine 440 Hz 48 kHz mono, aac 24k, -f adts: no index, duration only by counting frames"

"${FF[@]}" -f lavfi -i "$(tone 1 8000)" -ac 1 -c:a pcm_s16le "${NOMETA[@]}" -f wav "$OUT/tone-1s.wav"
add tone-1s.wav audio/wav 1000 "RIFF/WAVE PCM s16le" "ffmpeg sine 440 Hz 8 kHz mono, pcm_s16le, -f wav"

# --- AMR-NB and AMR in 3GP (what Android's MediaRecorder writes with THREE_GPP + AMR_NB).
if sox -R -n -r 8000 -c 1 -t amr-nb "$TMP/tone.amr" synth 2 sine 440 2>/dev/null; then
  cp "$TMP/tone.amr" "$OUT/tone-2s.amr"
  add tone-2s.amr audio/amr 2000 "AMR-NB (#!AMR magic, 20 ms frames)" \
    "sox -R -n -r 8000 -c 1 -t amr-nb: synth 2 sine 440 (libopencore-amrnb, MR475 default mode)"
  "${FF[@]}" -i "$TMP/tone.amr" -c:a copy "${NOMETA[@]}" -f 3gp "$OUT/tone-2s.3gp"
  add tone-2s.3gp audio/3gpp 2000 "3GP (MP4 with 3gp brand), AMR-NB track" \
    "the sox AMR-NB tone remuxed by ffmpeg -c:a copy -f 3gp (moov at the end)"
else
  echo "warning: no AMR-NB encoder (sox -t amr-nb failed); skipping .amr and .3gp" >&2
fi

# --- Not audio, declared as audio.
"${FF[@]}" -f lavfi -i "color=c=blue:s=16x16" -frames:v 1 -c:v png -f image2 "$TMP/blue.png"
cp "$TMP/blue.png" "$OUT/not-audio-png.m4a"
add not-audio-png.m4a audio/m4a null "PNG image" "a 16x16 PNG made by ffmpeg (lavfi color=blue), named and declared as m4a" not-audio

printf 'This is a plain text file pretending to be an MP3 recording.\n' > "$OUT/not-audio-text.mp3"
add not-audio-text.mp3 audio/mpeg null "plain text" "printf of one line of ASCII text, named and declared as mp3" not-audio

# A real WAV declared as MP3: an audio container, but of another family than the one declared.
"${FF[@]}" -f lavfi -i "$(tone 0.25 8000)" -ac 1 -c:a pcm_s16le "${NOMETA[@]}" -f wav "$OUT/wav-declared-as-mp3.mp3"
add wav-declared-as-mp3.mp3 audio/mpeg 250 "RIFF/WAVE PCM s16le" \
  "ffmpeg sine 440 Hz 8 kHz mono 0.25 s, pcm_s16le, -f wav, declared as audio/mpeg: real audio, wrong family" not-audio

{
  echo "["
  for i in "${!entries[@]}"; do
    if (( i < ${#entries[@]} - 1 )); then echo "${entries[$i]},"; else echo "${entries[$i]}"; fi
  done
  echo "]"
} > "$OUT/manifest.json"

ls -l "$OUT"
du -sh "$OUT"
