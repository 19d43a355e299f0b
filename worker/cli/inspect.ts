/**
 * `flashslide inspect <slide>`: what the slide is, how much tissue it has and how many regions the
 * model will see; writes the tissue mask PNG.
 */
import { basename, extname, join, resolve } from 'node:path';
import { openSlide } from '../slide/open-slide.js';
import { MissingMppError } from '../slide/errors.js';
import { findTissue } from '../tissue/tissue-map.js';
import { planRegions, validateRegionOptions, type RegionPlanOptions } from '../regions/region-plan.js';
import type { BackendName, MppSource } from '../slide/slide-source.js';
import { implausibleMppWarning } from '../slide/mpp-plausibility.js';
import { printable } from '../util/printable.js';

export interface InspectOptions {
  mpp?: number | undefined;
  backend?: BackendName | 'auto' | undefined;
  /** Folder for the tissue mask PNG. */
  outDir: string;
  regions: Partial<RegionPlanOptions>;
}

export interface InspectReport {
  path: string;
  backend: BackendName;
  vendor: string;
  width: number;
  height: number;
  levels: { width: number; height: number; downsample: number }[];
  mpp: number | null;
  mppX: number | null;
  mppY: number | null;
  mppSource: MppSource;
  mppNote: string | null;
  objectivePower: number | null;
  associatedImages: string[];
  tissueFraction: number;
  tissueMode: 'brightfield' | 'fluorescence';
  tissueMaskPath: string;
  tissueMaskSize: { width: number; height: number; downsample: number };
  regionCount: number | null;
  regionPlan: {
    targetMpp: number;
    effectiveMpp: number;
    regionSize: number;
    overlap: number;
    patchSize: number;
    tokensPerRegion: number;
    level: number;
    resampled: boolean;
    regionSizeLevel0: number;
    cols: number;
    rows: number;
    warning: string | null;
  } | null;
  warnings: string[];
}

export async function inspectSlide(path: string, options: InspectOptions): Promise<InspectReport> {
  validateRegionOptions(options.regions); // fail on bad flags before any pixel is read
  const source = await openSlide(path, { mpp: options.mpp, backend: options.backend });
  try {
    const tissue = await findTissue(source);
    const stem = basename(path, extname(path));
    const maskPath = resolve(join(options.outDir, `${stem}.tissue.png`));
    await tissue.writePng(maskPath);

    const warnings: string[] = [];
    let plan: ReturnType<typeof planRegions> | null = null;
    try {
      plan = planRegions(source, tissue, options.regions);
      if (plan.warning) warnings.push(plan.warning);
    } catch (err) {
      if (!(err instanceof MissingMppError)) throw err;
      warnings.push(`regions not planned: ${err.message}`);
    }
    const implausible = source.mppSource === 'override' && source.mpp !== null ? implausibleMppWarning(source.width, source.height, (source.mpp.x + source.mpp.y) / 2, '--mpp') : null;
    if (implausible !== null) warnings.push(implausible);
    if (tissue.tissueFraction === 0) warnings.push(implausible === null ? 'no tissue found: the slide looks like empty glass' : 'no tissue found: the slide looks like empty glass, or its mpp is wrong (above)');

    return {
      path: source.path,
      backend: source.backend,
      vendor: source.vendor,
      width: source.width,
      height: source.height,
      levels: source.levels.map(({ width, height, downsample }) => ({ width, height, downsample })),
      mpp: source.mpp === null ? null : (source.mpp.x + source.mpp.y) / 2,
      mppX: source.mpp?.x ?? null,
      mppY: source.mpp?.y ?? null,
      mppSource: source.mppSource,
      mppNote: source.mppNote,
      objectivePower: source.objectivePower,
      associatedImages: [...source.associatedImages],
      tissueFraction: tissue.tissueFraction,
      tissueMode: tissue.detection.mode,
      tissueMaskPath: maskPath,
      tissueMaskSize: { width: tissue.width, height: tissue.height, downsample: (tissue.downsampleX + tissue.downsampleY) / 2 },
      regionCount: plan === null ? null : plan.regions.length,
      regionPlan:
        plan === null
          ? null
          : {
              targetMpp: plan.targetMpp,
              effectiveMpp: plan.effectiveMpp,
              regionSize: plan.regionSize,
              overlap: plan.overlap,
              patchSize: plan.patchSize,
              tokensPerRegion: plan.tokensPerRegion,
              level: plan.level,
              resampled: plan.resampled,
              regionSizeLevel0: plan.regionSizeLevel0,
              cols: plan.cols,
              rows: plan.rows,
              warning: plan.warning,
            },
      warnings,
    };
  } finally {
    await source.close();
  }
}

/** The report as text, one line per field; control characters in any of them escaped. */
export function formatInspectReport(r: InspectReport): string {
  const mpp =
    r.mpp === null
      ? `unknown (${r.mppNote ?? 'not recorded'})`
      : `${r.mppX?.toFixed(4)} x ${r.mppY?.toFixed(4)} µm/px (${r.mppSource})`;
  const lines = [
    `slide        ${r.path}`,
    `format       ${r.vendor} via ${r.backend}`,
    `size         ${r.width} x ${r.height} px` + (r.mpp === null ? '' : `  (${((r.width * r.mpp) / 1000).toFixed(2)} x ${((r.height * r.mpp) / 1000).toFixed(2)} mm)`),
    `mpp          ${mpp}` + (r.objectivePower === null ? '' : `, ${r.objectivePower}x objective`),
    `levels       ${r.levels.map((l, i) => `${i}: ${l.width}x${l.height} (/${Number(l.downsample.toFixed(3))})`).join(', ')}`,
    `associated   ${r.associatedImages.join(', ') || 'none'}`,
    `tissue       ${(r.tissueFraction * 100).toFixed(1)} % of the slide (${r.tissueMode}); mask ${r.tissueMaskSize.width}x${r.tissueMaskSize.height} -> ${r.tissueMaskPath}`,
  ];
  if (r.regionPlan !== null && r.regionCount !== null) {
    const p = r.regionPlan;
    lines.push(
      `regions      ${r.regionCount} of ${p.cols}x${p.rows} grid: ${p.regionSize} px at ${p.effectiveMpp.toFixed(3)} µm/px ` +
        `(level ${p.level}${p.resampled ? ', resampled' : ', native'}), ${p.tokensPerRegion} tokens each at patch ${p.patchSize}`,
    );
  } else {
    lines.push('regions      not planned (no mpp)');
  }
  for (const w of r.warnings) lines.push(`warning      ${w}`);
  // Names come from outside (the slide's file name, its mask's, the names and notes the file
  // carries): a newline in one would forge a line of this report, so each line is made one line.
  return lines.map((line) => printable(line)).join('\n');
}
