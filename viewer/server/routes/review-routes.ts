/**
 * Verdicts. GET returns the review with its version as the ETag; PUT of one region's verdict
 * must carry If-Match with that version (428 without it, 409 when someone else changed the review
 * since), so two reviewers of one slide never silently overwrite each other.
 *
 * With authentication on, a verdict is recorded under the signed-in name: the body may leave
 * `reviewer` out or repeat that name, and a different one is refused (403), so nobody records a
 * verdict as someone else. Without authentication the typed name is recorded, as given.
 */
import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Review } from '../api-types.js';
import { BadRequestError, ForbiddenError, PreconditionRequiredError } from '../errors.js';
import type { ServerContext } from '../server-context.js';
import { entryOr404 } from './slide-routes.js';

const ReviewParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{24}$' }), regionId: Type.String({ pattern: '^[0-9a-f-]{1,64}$' }) });
const VerdictBody = Type.Object(
  {
    verdict: Type.Union([Type.Literal('confirmed'), Type.Literal('rejected'), Type.Literal('unsure')]),
    note: Type.Optional(Type.String({ maxLength: 4000 })),
    reviewer: Type.Optional(Type.String({ maxLength: 120 })),
  },
  { additionalProperties: false },
);

/** `"7"`, `W/"7"` or `7` -> 7. */
export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  if (m === null) throw new BadRequestError(`If-Match must be the review version in quotes, e.g. "3" (got ${JSON.stringify(header.slice(0, 40))})`);
  return Number(m[1]);
}

export function registerReviewRoutes(fastify: FastifyInstance, ctx: ServerContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/api/slides/:id/review', { schema: { params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{24}$' }) }) } }, async (req, reply): Promise<Review> => {
    const entry = await entryOr404(ctx, req.params.id);
    const review = await ctx.reviews.read(entry.resultDir, await ctx.regions.ids(entry));
    void reply.header('ETag', `"${review.version}"`).header('Cache-Control', 'no-store');
    return review;
  });

  app.put('/api/slides/:id/review/regions/:regionId', { schema: { params: ReviewParams, body: VerdictBody } }, async (req, reply): Promise<Review> => {
    const entry = await entryOr404(ctx, req.params.id);
    if (entry.status !== 'done') throw new BadRequestError(`${entry.name} has no result yet (${entry.status}): there is nothing to review`);
    const ifMatch = parseIfMatch(req.headers['if-match']);
    if (ifMatch === undefined) throw new PreconditionRequiredError('send If-Match with the review version you saw (the ETag of GET .../review), so a concurrent edit is not overwritten');
    const signedIn = ctx.auth.reviewerOf(req);
    const claimed = req.body.reviewer?.trim();
    if (signedIn !== null && claimed !== undefined && claimed !== '' && claimed !== signedIn) {
      throw new ForbiddenError('reviewer-mismatch', `you are signed in as ${signedIn}: verdicts are recorded under that name (leave "reviewer" out)`);
    }
    const input = signedIn === null ? req.body : { ...req.body, reviewer: signedIn };
    const review = await ctx.reviews.setVerdict(entry.resultDir, await ctx.regions.ids(entry), req.params.regionId, input, ifMatch);
    ctx.live.trigger();
    void reply.header('ETag', `"${review.version}"`).header('Cache-Control', 'no-store');
    return review;
  });
}
