// The calibrated model files and the version table that names them: which version is
// active, recording a new one (file first, then one transaction), pruning old ones,
// removing orphans, and rebuilding a lost table from the files (recovery.ts).
//
// The database never names a missing file: a failed write removes the file again, pruning
// clears model_path before deleting, and an interrupted delete leaves an orphan the next
// start removes. After the version table was lost, unreferenced files are kept.

import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CalibdError, OptionError, StateError, errorMessage, writeFileAtomic, type FsOps } from '../common/index.js';
import { readModel, parseModel } from '../onnx/index.js';
import { graphSha256, sha256, type CalibrationProfile } from '../quant/index.js';
import type { NewProfile, ProfileRecord, ProfileStore } from '../state/index.js';
import type { Logger } from '../common/index.js';
import type { EventSink } from './events.js';
import { modelFiles, rebuildSummary, rebuildVersions } from './recovery.js';

export interface ModelStoreOptions {
  profiles: ProfileStore;
  modelsDir: string;
  /** sha256 of the FP32 model: versions of other models are never restored. */
  fp32Sha256: string;
  /** Path of calibd.db, named in errors. */
  dbPath: string;
  /** Set when a damaged database was moved aside: its versions are gone, the files are not. */
  movedAside: string | null;
  keepVersions: () => number;
  fs: FsOps;
  events: EventSink;
  log: Logger;
}

export class ModelStore {
  private current: ProfileRecord | null = null;
  /** Set while the version table was lost: model files it cannot account for are kept. */
  private keepUnreferencedFiles = false;
  /** graphSha256 of the active version's model file, computed once per file. */
  private activeGraph: { path: string; sha: string } | null = null;

  constructor(private readonly o: ModelStoreOptions) {
    mkdirSync(o.modelsDir, { recursive: true });
  }

  /** The version being served, or null while FP32 serves. */
  get active(): ProfileRecord | null {
    return this.current;
  }

  /** Called once the engine serves `version` (after the write that made it active committed). */
  served(version: number): ProfileRecord {
    this.current = this.o.profiles.get(version)!;
    return this.current;
  }

  /**
   * A database without a single version next to model files has lost its table (it was
   * damaged and replaced, or deleted). The files say how they were calibrated, so the table
   * is rebuilt from them; nothing in the models folder is deleted on this start.
   */
  recoverVersions(): void {
    const { profiles, modelsDir, movedAside } = this.o;
    if (movedAside) this.keepUnreferencedFiles = true;
    if (profiles.count() > 0 || modelFiles(modelsDir).length === 0) return;
    this.keepUnreferencedFiles = true;
    try {
      const r = rebuildVersions(profiles, { modelsDir, servedSha256: this.o.fp32Sha256, damagedDb: movedAside, fs: this.o.fs });
      this.o.events.emit('state.rebuilt', { message: rebuildSummary(r), versions: r.versions.map((v) => v.version), active: r.active, activeFrom: r.activeFrom, unaccounted: r.unaccounted });
    } catch (err) {
      this.o.events.emit('error', { message: `rebuilding the calibration versions from the model files failed; the files are kept: ${errorMessage(err)}`, code: errorCode(err) });
    }
  }

  /** The active calibration of this FP32 model, if its file is intact; else the newest accepted one. */
  restoreActive(): Uint8Array | null {
    const { profiles } = this.o;
    const candidates = [profiles.active(), ...profiles.list({ modelSha256: this.o.fp32Sha256, limit: Infinity }).filter((p) => p.state === 'accepted')];
    for (const p of candidates) {
      if (!p || p.modelSha256 !== this.o.fp32Sha256 || !p.modelPath) continue;
      try {
        const bytes = readFileSync(p.modelPath);
        readModel(p.modelPath); // parses: a torn or foreign file is skipped
        if (p.state !== 'active') profiles.setActive(p.version);
        this.current = profiles.get(p.version) ?? p;
        return bytes;
      } catch (err) {
        this.o.events.emit('error', { message: `calibration v${p.version} cannot be restored: ${(err as Error).message}` });
      }
    }
    return null;
  }

  /** A candidate the gate turned down: its figures are kept, its model is not. */
  recordRejected(profile: CalibrationProfile, figures: Record<string, unknown>, parent: number | null): number {
    try {
      return this.o.profiles.insert({ ...this.newProfile(profile, figures, parent), state: 'rejected' });
    } catch (err) {
      throw stateWriteError('recording a rejected calibration', this.o.dbPath, err);
    }
  }

  /**
   * Records `model` as the active version: its file first, then one transaction that adds
   * the row and demotes the previous active one. When either fails, the file is removed
   * again and a StateError says what failed; the database is as it was.
   */
  recordActive(model: Uint8Array, profile: CalibrationProfile, figures: Record<string, unknown>, parent: number | null): number {
    const modelPath = join(this.o.modelsDir, `${sha256(model).slice(0, 16)}.onnx`);
    try {
      writeFileAtomic(modelPath, model, this.o.fs);
    } catch (err) {
      // A failed folder fsync comes after the rename: the file may be in place.
      this.removeUnrecorded(modelPath);
      throw stateWriteError('writing the model file', modelPath, err);
    }
    try {
      return this.o.profiles.insert({ ...this.newProfile(profile, figures, parent), modelPath, state: 'active' });
    } catch (err) {
      this.removeUnrecorded(modelPath);
      throw stateWriteError('recording the new calibration', this.o.dbPath, err);
    }
  }

  /** Marks `version` active as a rollback; a failed write is a StateError and changes nothing. */
  recordRollback(version: number): number {
    try {
      this.o.profiles.setActive(version, { rollback: true });
    } catch (err) {
      throw stateWriteError(`recording the rollback to v${version}`, this.o.dbPath, err);
    }
    return version;
  }

  private newProfile(profile: CalibrationProfile, figures: Record<string, unknown>, parent: number | null): NewProfile {
    return { method: profile.method, options: profile.options, sampleCount: profile.sampleCount, modelSha256: this.o.fp32Sha256, profile, figures, parent };
  }

  /** Deletes a model file no version refers to; a failure only leaves an orphan for the next start. */
  private removeUnrecorded(modelPath: string): void {
    try {
      if (this.o.profiles.list({ limit: Infinity }).some((p) => p.modelPath === modelPath)) return;
      this.o.fs.rmSync(modelPath, { force: true });
    } catch (err) {
      this.o.log.warn({ err, modelPath }, 'could not remove an unrecorded model file; the next start removes it');
    }
  }

  /**
   * Removes model files no profile refers to (left by a crash between write and record, or
   * between pruning a version and deleting its file), and the temporaries of writes a crash
   * cut short (writeFileAtomic's `.<name>.<pid>.<time>.tmp`). After the version table was
   * lost, unreferenced model files are kept: the fresh table cannot vouch for them.
   */
  cleanOrphans(): void {
    const used = new Set(this.o.profiles.list({ limit: Infinity }).map((p) => p.modelPath).filter(Boolean) as string[]);
    for (const f of readdirSync(this.o.modelsDir)) {
      const p = join(this.o.modelsDir, f);
      const torn = f.startsWith('.') && f.endsWith('.tmp');
      const orphan = !used.has(p) && f.endsWith('.onnx') && !this.keepUnreferencedFiles;
      if (torn || orphan) this.o.fs.rmSync(p, { force: true });
    }
  }

  /** At start: prunes what retention.keepVersions (maybe lowered while stopped) no longer keeps, then removes orphans. */
  tidy(): void {
    if (!this.keepUnreferencedFiles) this.prune();
    this.cleanOrphans();
  }

  /**
   * Keeps the newest retention.keepVersions versions a rollback could return to (accepted
   * or rolled back) with their model files, plus the active one. Older versions stay listed
   * as history without a file. Their model_path is cleared first, in one transaction, and
   * the files are deleted after: an interruption leaves files no version names, which the
   * next start removes, and the database never names a missing file.
   */
  prune(): void {
    const keepVersions = this.o.keepVersions();
    const all = this.o.profiles.list({ limit: Infinity });
    const older = all.filter((p) => p.modelPath && (p.state === 'accepted' || p.state === 'rolled_back')).slice(keepVersions);
    if (older.length === 0) return;
    try {
      this.o.profiles.forgetModelFiles(older.map((p) => p.version));
    } catch (err) {
      this.o.events.emit('error', { message: `pruning old calibration versions failed; they are kept: ${errorMessage(err)}`, code: errorCode(err) });
      return;
    }
    const pruned = new Set(older.map((p) => p.version));
    // Two versions never share a file today; this keeps it safe if they ever do.
    const stillNamed = new Set(all.filter((p) => !pruned.has(p.version)).map((p) => p.modelPath));
    const left: string[] = [];
    for (const p of older) {
      if (stillNamed.has(p.modelPath)) continue;
      try {
        this.o.fs.rmSync(p.modelPath!, { force: true });
      } catch (err) {
        left.push(p.modelPath!);
        this.o.log.warn({ err, modelPath: p.modelPath }, 'could not delete a pruned model file; the next start removes it');
      }
    }
    this.o.events.emit('versions.pruned', { versions: [...pruned], keepVersions, ...(left.length ? { filesLeft: left } : {}) });
  }

  /**
   * True when `model` computes exactly what the active version's file does (the same scales,
   * zero points and weights; only the metadata differs). Serving it would change nothing.
   */
  isActiveModel(model: Uint8Array): boolean {
    const path = this.current?.modelPath;
    if (!path) return false;
    if (this.activeGraph?.path !== path) this.activeGraph = { path, sha: graphSha256(readModel(path)) };
    return graphSha256(parseModel(model, 'candidate')) === this.activeGraph.sha;
  }

  /** The active version's model bytes, or null while FP32 serves. */
  activeModelBytes(): Uint8Array | null {
    const path = this.current?.modelPath;
    return path ? new Uint8Array(readFileSync(path)) : null;
  }

  /** The version `version` for a rollback to it, or an OptionError saying why there is none. */
  versionFor(version: number): ProfileRecord {
    const target = this.o.profiles.get(version);
    if (!target) throw new OptionError(`no calibration version ${version}`, { value: version, hint: 'list versions with GET /v2/calibd/calibrations' });
    if (target.state === 'rejected') throw new OptionError(`version ${version} was rejected by the gate`, { value: version, hint: 'roll back to an accepted version' });
    return target;
  }

  /** The model file `target` serves from, or an OptionError saying why it cannot: another FP32 model's, pruned, or gone. */
  restorablePath(target: ProfileRecord): string {
    const v = target.version;
    if (target.modelSha256 !== this.o.fp32Sha256) {
      throw new OptionError(`version ${v} was calibrated for another FP32 model`, { value: v, hint: 'list versions with GET /v2/calibd/calibrations' });
    }
    if (!target.modelPath) {
      throw new OptionError(`version ${v} has no model file any more: retention.keepVersions (${this.o.keepVersions()}) pruned it`, {
        value: v,
        hint: 'roll back to a version listed with hasModel: true, or raise retention.keepVersions',
      });
    }
    if (!existsSync(target.modelPath)) {
      throw new OptionError(`version ${v} has no model file: ${target.modelPath} is missing`, { value: v, hint: 'roll back to another version' });
    }
    return target.modelPath;
  }

  /** The default rollback target: the newest accepted or rolled-back version older than the active one, with its file. */
  previous(): ProfileRecord | undefined {
    const cur = this.current;
    return this.o.profiles
      .list({ modelSha256: this.o.fp32Sha256, limit: Infinity })
      .filter((p) => p.version !== cur?.version && (p.state === 'accepted' || p.state === 'rolled_back') && p.modelPath)
      .sort((a, b) => b.version - a.version)
      .find((p) => !cur || p.version < cur.version);
  }
}

/**
 * A failed write to the state directory as a typed error naming the file, the cause's code
 * (ENOSPC, SQLITE_FULL …) and that nothing changed. Errors that are already typed pass.
 */
export function stateWriteError(action: string, path: string, err: unknown): Error {
  if (err instanceof CalibdError) return err;
  const code = errorCode(err);
  const text = errorMessage(err);
  return new StateError(`${action} failed (${text.includes(code) ? text : `${code}: ${text}`}); nothing was changed`, {
    value: path,
    hint: `free space on the disk holding ${dirname(path)} or check it for I/O errors, then retry`,
    cause: err,
  });
}

/**
 * What went wrong, as a code for events: for a failed state write the disk's or SQLite's
 * own code (ENOSPC, SQLITE_FULL), else a CalibdError's catalogued code, else 'error'.
 */
export function errorCode(err: unknown): string {
  if (err instanceof StateError && err.cause !== undefined) return errorCode(err.cause);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}
