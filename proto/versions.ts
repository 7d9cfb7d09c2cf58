// Version rules: semver for provided versions and required ranges, and the compatibility check
// shared by the controller, the outbound balancer and the inbound check.
import semver from 'semver';
import { QbasisError } from './errors.ts';

export function parseVersion(text: string): string {
  const v = semver.valid(text.trim());
  if (v === null) {
    throw new QbasisError('QB_INVALID_VERSION', `'${text}' is not a semantic version; expected MAJOR.MINOR.PATCH such as 1.4.0`);
  }
  return v;
}

export function parseRange(text: string): string {
  const trimmed = text.trim();
  const r = trimmed === '' ? null : semver.validRange(trimmed);
  if (r === null) {
    throw new QbasisError('QB_INVALID_RANGE', `'${text}' is not a semver range; expected a range such as ^1.2, ~1.4.0 or >=1.2 <3`);
  }
  return trimmed;
}

export function isRange(text: string): boolean {
  return text.trim() !== '' && semver.validRange(text) !== null;
}

export function satisfies(version: string, range: string): boolean {
  return semver.satisfies(version, range);
}

export interface MajorMinor {
  major: number;
  minor: number;
}

function fitSegment(v: semver.SemVer, text: string): MajorMinor {
  if (v.major > 255 || v.minor > 255) {
    throw new QbasisError(
      'QB_FRAME_VERSION_RANGE',
      `version ${text} does not fit a basis header; expected major and minor from 0 to 255`,
    );
  }
  return { major: v.major, minor: v.minor };
}

/** The schema version a provider puts on its responses. */
export function versionSegment(version: string): MajorMinor {
  const v = semver.parse(version);
  if (v === null) throw new QbasisError('QB_INVALID_VERSION', `'${version}' is not a semantic version; expected MAJOR.MINOR.PATCH`);
  return fitSegment(v, version);
}

/** The lowest acceptable version a caller puts on its requests. */
export function minVersion(range: string): MajorMinor {
  const v = semver.minVersion(range);
  if (v === null) throw new QbasisError('QB_INVALID_RANGE', `range '${range}' admits no version; expected a satisfiable range`);
  return fitSegment(v, v.version);
}

export interface EndpointTerms {
  version: string;
  codecs: readonly number[];
  ready: boolean;
  ejected?: boolean;
}

export interface CallerTerms {
  range: string;
  codecs: readonly number[];
}

export type Compatibility = { ok: true } | { ok: false; reason: string };

/** DESIGN.md "Compatible": shared codec, ready, not ejected, provided version in the caller's range. */
export function compatible(ep: EndpointTerms, caller: CallerTerms): Compatibility {
  if (!ep.codecs.some((c) => caller.codecs.includes(c))) {
    return { ok: false, reason: `speaks codec ${ep.codecs.join(',') || 'none'}, caller speaks ${caller.codecs.join(',')}` };
  }
  if (!ep.ready) return { ok: false, reason: 'not ready' };
  if (ep.ejected === true) return { ok: false, reason: 'ejected after consecutive failures' };
  if (!satisfies(ep.version, caller.range)) {
    return { ok: false, reason: `provides ${ep.version}, outside ${caller.range}` };
  }
  return { ok: true };
}

/**
 * Inbound check of a request: the frame's minimum and, when the caller sent one, its full range; both
 * must hold (a range that admits this pod never excuses a frame asking for more than it provides).
 * Without a range the frame's minimum reads as caret: same major, at least that minor.
 */
export function acceptsRequest(provided: string, min: MajorMinor, range: string | undefined): Compatibility {
  const p = semver.parse(provided);
  if (p === null) return { ok: false, reason: `provided version '${provided}' is not semver` };
  if (range === undefined) {
    if (p.major !== min.major || p.minor < min.minor) {
      return { ok: false, reason: `provides ${provided}, caller needs >=${min.major}.${min.minor} <${min.major + 1}` };
    }
    return { ok: true };
  }
  if (p.major < min.major || (p.major === min.major && p.minor < min.minor)) {
    return { ok: false, reason: `provides ${provided}, below the frame's minimum ${min.major}.${min.minor}` };
  }
  if (!isRange(range) || !satisfies(provided, range)) {
    return { ok: false, reason: `provides ${provided}, outside the caller's range ${range}` };
  }
  return { ok: true };
}
