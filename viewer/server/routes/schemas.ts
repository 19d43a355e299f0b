/** Request schemas shared by the routes (TypeBox: JSON Schema that also types the handler). */
import { Type } from 'typebox';

/** Analysis ids are 24 lower-case hex characters; anything else never reaches a lookup. */
export const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{24}$' }) });
