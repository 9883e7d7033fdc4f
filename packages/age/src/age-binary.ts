import { spawnSync } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { BackupError, ChildProcessDuplex, childProcessEnv, type ExternalEncoder } from '@scholaria/backup-core';

/** What every age v1 file starts with (age-encryption.org/v1 header line). */
const AGE_MAGIC = 'age-encryption.org/v1\n';
const INSTALL_HINT = "apt-get install age (or set implementation: 'js' to encrypt in JavaScript)";
const FAILURE_HINT = 'check that the age program works (age --version) and accepts the configured recipients';

const probes = new Map<string, boolean>();

/**
 * Whether `binary` runs here and encrypts to `recipients` (checked once per program and
 * recipient list by encrypting a few bytes and looking at the header it writes). Recipients
 * are public keys, so they may go on the command line; no secret ever does.
 */
export function ageBinaryEncrypts(binary: string, recipients: readonly string[]): boolean {
  // PATH is part of the key: the same name may find another program (or none) after a change.
  const key = `${binary}\0${process.env['PATH'] ?? ''}\0${recipients.join(',')}`;
  let works = probes.get(key);
  if (works === undefined) {
    const r = spawnSync(binary, recipientArgs(recipients), {
      input: Buffer.from('probe'),
      env: childProcessEnv(),
      timeout: 15_000,
      windowsHide: true,
      maxBuffer: 1 << 20,
    });
    works = r.error === undefined && r.status === 0 && r.stdout.subarray(0, AGE_MAGIC.length).toString('latin1') === AGE_MAGIC;
    probes.set(key, works);
  }
  return works;
}

function recipientArgs(recipients: readonly string[]): string[] {
  return recipients.flatMap((r) => ['-r', r]);
}

/** `age -r R1 -r R2 ...` as a stream: bytes in, an age v1 file out (fails unless age exits 0). */
export function ageBinaryEncoder(binary: string, recipients: readonly string[]): Duplex {
  return new ChildProcessDuplex({
    command: binary,
    args: recipientArgs(recipients),
    label: 'age encryption',
    missingHint: INSTALL_HINT,
    failureHint: FAILURE_HINT,
  });
}

/**
 * The same program as an external encoder (stdin to stdout), for a producer pipeline that joins
 * programs by OS pipes. age does not report a byte count; the count comes from the program
 * before it in the chain (the compressor).
 */
export function ageExternalEncoder(binary: string, recipients: readonly string[]): ExternalEncoder {
  return {
    command: binary,
    args: recipientArgs(recipients),
    label: 'age encryption',
    missingHint: INSTALL_HINT,
    failureHint: FAILURE_HINT,
    inputBytes: () => undefined,
    errorText: (stderr) => stderr.trim().split('\n').slice(-3).join('; '),
  };
}

export function ageBinaryMissing(binary: string): BackupError {
  return new BackupError('TOOL_MISSING', `age: implementation 'binary' needs the "${binary}" program, which is not installed or does not encrypt to the configured recipients`, {
    component: 'age',
    hint: INSTALL_HINT,
    details: { command: binary },
  });
}
