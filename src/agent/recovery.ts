// Rebuilding the version table after the state database was lost (moved aside as damaged,
// or deleted). Every INT8 model file calibd writes carries its calibration record in
// metadata_props (src/quant/metadata.ts), so the files can be accounted for again instead
// of being removed as orphans and replaced by a data-free calibration. Which version was
// active is not in the files: it is read from the damaged database when that part of it
// can still be read, and otherwise the newest calibration of the served model is chosen.

import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import type { FsOps } from '../common/index.js';
import type { NewProfile, ProfileStore } from '../state/index.js';
import { readModel } from '../onnx/index.js';
import { readProfile, type CalibrationProfile } from '../quant/index.js';

/** Suffix given to files in the models folder that hold no calibd calibration. */
export const UNACCOUNTED_SUFFIX = '.unaccounted';

export interface RebuiltVersion {
  version: number;
  modelPath: string;
  modelSha256: string;
}

export interface RebuildResult {
  /** Oldest calibration first; their numbers are new, the old ones are not in the files. */
  versions: RebuiltVersion[];
  /** The rebuilt version made active, or null when none belongs to the served model. */
  active: number | null;
  /** How `active` was chosen. */
  activeFrom: 'damaged database' | 'newest calibration' | 'none';
  /** Files that are not calibd calibrations, renamed with UNACCOUNTED_SUFFIX (kept, not deleted). */
  unaccounted: string[];
}

/** The model files in the folder (not the temporaries of interrupted writes). */
export function modelFiles(modelsDir: string): string[] {
  return readdirSync(modelsDir)
    .filter((f) => f.endsWith('.onnx') && !f.startsWith('.'))
    .map((f) => join(modelsDir, f));
}

interface Found {
  modelPath: string;
  profile: CalibrationProfile;
}

/**
 * Adds one accepted version per calibration file and makes one of the served model's
 * active, in one transaction. `damagedDb` is where the lost database was moved, if anywhere.
 */
export function rebuildVersions(profiles: ProfileStore, opts: { modelsDir: string; servedSha256: string; damagedDb: string | null; fs: FsOps }): RebuildResult {
  const found: Found[] = [];
  const unaccounted: string[] = [];
  for (const modelPath of modelFiles(opts.modelsDir)) {
    const profile = calibrationOf(modelPath);
    if (profile) found.push({ modelPath, profile });
    else unaccounted.push(modelPath);
  }
  found.sort((a, b) => a.profile.createdAt.localeCompare(b.profile.createdAt) || a.modelPath.localeCompare(b.modelPath));
  const { index, activeFrom } = chooseActive(found, opts.servedSha256, opts.damagedDb);
  // One transaction: the table is either rebuilt with its active version, or still empty.
  const numbers = profiles.insertAll(
    found.map((f, i) => ({ ...toNewProfile(f), state: i === index ? 'active' : 'accepted' })),
    'profiles.rebuild',
  );
  for (const path of unaccounted) opts.fs.renameSync(path, path + UNACCOUNTED_SUFFIX);
  return {
    versions: found.map((f, i) => ({ version: numbers[i], modelPath: f.modelPath, modelSha256: f.profile.sourceModelSha256 })),
    active: index === null ? null : numbers[index],
    activeFrom,
    unaccounted,
  };
}

/** One line for the event log: how many versions came back and how the active one was chosen. */
export function rebuildSummary(r: RebuildResult): string {
  const how = {
    'damaged database': 'the active version is the one the damaged database still names',
    'newest calibration': 'which version was active is not known (model files do not record it): the newest calibration of this model is made active',
    none: 'none of them belongs to the served model',
  }[r.activeFrom];
  return `rebuilt ${r.versions.length} calibration versions from their model files; ${how}`;
}

/** The calibration record a file carries, or null for a file that is not a calibd INT8 model. */
function calibrationOf(modelPath: string): CalibrationProfile | null {
  try {
    return readProfile(readModel(modelPath), modelPath) ?? null;
  } catch {
    return null;
  }
}

function toNewProfile(f: Found): NewProfile {
  const p = f.profile;
  return {
    method: p.method,
    options: p.options,
    sampleCount: p.sampleCount,
    modelSha256: p.sourceModelSha256,
    profile: p,
    figures: { ...(p.validation ?? {}), reason: 'rebuilt from the calibration stored in its model file after the state database was lost' },
    modelPath: f.modelPath,
    createdAt: Date.parse(p.createdAt) || Date.now(),
    parent: null,
  };
}

/** Which of the found files (oldest first) becomes active, and how that was decided. */
function chooseActive(found: Found[], servedSha256: string, damagedDb: string | null): { index: number | null; activeFrom: RebuildResult['activeFrom'] } {
  const named = damagedDb ? activeFileIn(damagedDb) : null;
  // Compared by file name: the state folder may have moved since the path was stored.
  const salvaged = named === null ? -1 : found.findIndex((f) => basename(f.modelPath) === basename(named) && f.profile.sourceModelSha256 === servedSha256);
  if (salvaged >= 0) return { index: salvaged, activeFrom: 'damaged database' };
  let newest = -1;
  found.forEach((f, i) => {
    if (f.profile.sourceModelSha256 === servedSha256) newest = i;
  });
  return newest >= 0 ? { index: newest, activeFrom: 'newest calibration' } : { index: null, activeFrom: 'none' };
}

/** The active version's model file as the damaged database still records it, if it can be read. */
function activeFileIn(damagedDb: string): string | null {
  let db: Database.Database | undefined;
  try {
    db = new Database(damagedDb, { readonly: true, fileMustExist: true });
    const path = db.prepare("SELECT model_path FROM profiles WHERE state = 'active'").pluck().get();
    return typeof path === 'string' ? path : null;
  } catch {
    return null; // the damage reaches the profiles table too
  } finally {
    db?.close();
  }
}
