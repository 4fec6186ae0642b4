import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PresignedUpload } from './index';

export interface PutResult {
  status: number;
  /** The store's answer, for the error message of a refused upload (S3's XML, the local driver's JSON). */
  body: string;
}

/**
 * PUTs a file to a presigned upload URL the way the phone does: the signed headers exactly as the API
 * gave them, the raw bytes streamed from disk (never read whole), `onProgress` called with the bytes
 * sent so far. No bearer token: the URL is the permission.
 */
export async function putFile(
  upload: Pick<PresignedUpload, 'url' | 'method' | 'headers'>,
  path: string,
  onProgress?: (sentBytes: number) => void,
  /** Inclusive byte range of the file to send (a part of a multipart upload); the whole file without it. */
  range?: { start: number; end: number },
): Promise<PutResult> {
  if (upload.url === undefined) throw new Error('This upload has no single URL: it is uploaded in parts.');
  const size = range ? range.end - range.start + 1 : (await stat(path)).size;
  const url = new URL(upload.url);
  const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
    method: upload.method,
    headers: { 'Content-Length': String(size), ...upload.headers },
  });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
  });
  let sent = 0;
  const file = createReadStream(path, range);
  file.on('data', (chunk) => {
    sent += chunk.length;
    onProgress?.(sent);
  });
  file.once('error', (error) => request.destroy(error));
  // A store may answer (and refuse) before the whole body is sent; the answer is what counts then.
  request.on('error', () => file.destroy());
  file.pipe(request);
  const response = await answered;
  file.destroy();
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return { status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') };
}
