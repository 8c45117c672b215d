/**
 * Files that are either fully written or not there: a temporary file in the same folder, fsync,
 * then rename over the target. A reader (or a resumed run after SIGKILL) never sees half a file,
 * and a full disk leaves the previous version in place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InputError } from '../errors';

export function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Why a write failed, in words a user can act on. */
export function describeWriteError(file: string, e: unknown): InputError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const why = code === 'ENOSPC' ? 'the disk is full' : code === 'EDQUOT' ? 'the disk quota is exceeded'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'the file system is read-only'
      : code === 'ENOENT' ? 'its folder does not exist' : code ?? (e as Error)?.message ?? String(e);
  return new InputError(`${file}: cannot write (${why})`);
}

/** Writes `chunks` one after another as `file`, atomically (see above). */
export function writeChunksAtomic(file: string, chunks: Iterable<Uint8Array>): void {
  const tmp = tempPathFor(file);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    for (const bytes of chunks) {
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e instanceof InputError ? e : describeWriteError(file, e);
  }
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  writeChunksAtomic(file, [typeof data === 'string' ? Buffer.from(data) : data]);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Appends one line. A line is small, so a crash leaves at most one torn last line, which readers
 * of JSONL logs skip; on a full disk the partial line is cut off again.
 */
export function appendLine(file: string, line: string): void {
  const before = fs.existsSync(file) ? fs.statSync(file).size : 0;
  try {
    fs.appendFileSync(file, line.endsWith('\n') ? line : line + '\n');
  } catch (e) {
    try { fs.truncateSync(file, before); } catch { /* nothing more to undo */ }
    throw describeWriteError(file, e);
  }
}
