import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';

/**
 * A signed statement "the log had `count` records and its head hash was `head` at `time`". Written
 * to a file beside the log at intervals; the signing key lives in the PKI folder, apart from the log,
 * so whoever can rewrite the log cannot forge checkpoints, and truncating the tail is caught.
 */
export interface Checkpoint {
  readonly count: number;
  readonly head: string;
  readonly time: string;
  /** Ed25519 signature (base64) over `count|head|time`. */
  readonly sig: string;
}

/** File names in the PKI folder: the private key signs, the public key lets anyone verify. */
export const CHECKPOINT_KEY_FILE = 'audit-signing-key.pem';
export const CHECKPOINT_PUBLIC_KEY_FILE = 'audit-signing.pem';

const message = (c: Pick<Checkpoint, 'count' | 'head' | 'time'>) => Buffer.from(`${c.count}|${c.head}|${c.time}`);

/** Creates the Ed25519 checkpoint key pair: private key mode 0600, public key for auditors. */
export async function createCheckpointKey(privatePath: string, publicPath: string): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await writeFile(privatePath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  await writeFile(publicPath, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644, flag: 'wx' });
}

/** Signs checkpoints with the private key. */
export class CheckpointSigner {
  private constructor(private readonly key: KeyObject) {}

  static async load(privatePath: string): Promise<CheckpointSigner> {
    return new CheckpointSigner(createPrivateKey(await readFile(privatePath, 'utf8')));
  }

  sign(count: number, head: string, time = new Date().toISOString()): Checkpoint {
    return { count, head, time, sig: sign(null, message({ count, head, time }), this.key).toString('base64') };
  }
}

/** True when the checkpoint's signature is the key's. */
export function checkpointSignatureValid(c: Checkpoint, publicKeyPem: string): boolean {
  try {
    return verify(null, message(c), createPublicKey(publicKeyPem), Buffer.from(c.sig, 'base64'));
  } catch {
    return false;
  }
}
