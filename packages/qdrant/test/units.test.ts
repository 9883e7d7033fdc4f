import { Readable } from 'node:stream';
import busboy from 'busboy';
import { describe, expect, it } from 'vitest';
import { multipartFileBody, parseVersion, snapshotCompatibility } from '../src/index.js';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function parseMultipart(contentType: string, body: Buffer): Promise<{ field: string; filename: string; data: Buffer }[]> {
  const files: { field: string; filename: string; data: Buffer }[] = [];
  const bb = busboy({ headers: { 'content-type': contentType } });
  await new Promise<void>((resolve, reject) => {
    bb.on('file', (field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => files.push({ field, filename: info.filename ?? '', data: Buffer.concat(chunks) }));
    });
    bb.on('close', resolve);
    bb.on('error', reject);
    bb.end(body);
  });
  return files;
}

describe('multipartFileBody', () => {
  it('streams one file field that a standard parser reads back byte for byte, with an exact Content-Length', async () => {
    const data = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256));
    const file = Readable.from([data.subarray(0, 1000), data.subarray(1000, 50_000), data.subarray(50_000)]);
    const m = multipartFileBody('snapshot', 'docs "x".snapshot', file, data.length);
    const body = await collect(m.body);
    expect(body.length).toBe(m.contentLength);
    const files = await parseMultipart(m.contentType, body);
    expect(files).toHaveLength(1);
    expect(files[0]!.field).toBe('snapshot');
    expect(files[0]!.filename).toBe('docs _x_.snapshot');
    expect(files[0]!.data.equals(data)).toBe(true);
  });

  it('fails when the file is shorter or longer than the recorded size', async () => {
    await expect(collect(multipartFileBody('snapshot', 'a', Readable.from([Buffer.alloc(10)]), 11).body)).rejects.toThrow(/has 10 bytes, the manifest recorded 11/);
    await expect(collect(multipartFileBody('snapshot', 'a', Readable.from([Buffer.alloc(12)]), 11).body)).rejects.toThrow(/longer than the 11 bytes/);
  });

  it('passes the file stream error through', async () => {
    const file = new Readable({
      read() {
        this.destroy(new Error('checksum of the artifact does not match'));
      },
    });
    await expect(collect(multipartFileBody('snapshot', 'a', file).body)).rejects.toThrow(/checksum of the artifact/);
  });
});

describe('snapshot version compatibility', () => {
  it('parses Qdrant versions', () => {
    expect(parseVersion('1.13.2')).toEqual({ major: 1, minor: 13, patch: 2 });
    expect(parseVersion('v1.9')).toEqual({ major: 1, minor: 9, patch: 0 });
    expect(parseVersion('dev')).toBeUndefined();
  });

  it('allows the same minor version and refuses another', () => {
    expect(snapshotCompatibility('1.13.2', '1.13.2')).toEqual({ ok: true });
    expect(snapshotCompatibility('1.13.2', '1.13.6')).toEqual({ ok: true });
    expect(snapshotCompatibility('1.13.2', '1.13.0')).toMatchObject({ ok: true, warning: expect.stringContaining('older') });
    expect(snapshotCompatibility('1.13.2', '1.14.0')).toMatchObject({ ok: false, reason: expect.stringContaining('same minor version (1.13.x)') });
    expect(snapshotCompatibility('1.13.2', '2.13.2')).toMatchObject({ ok: false });
    expect(snapshotCompatibility(undefined, '1.13.2')).toMatchObject({ ok: true, warning: expect.any(String) });
  });
});
