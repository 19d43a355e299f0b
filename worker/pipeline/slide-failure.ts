/**
 * Which errors mean "this slide cannot be analysed" (record it and go on with the next) rather
 * than a bug. One predicate for the embedded run, the queue worker and the scoring thread.
 */
import { SlideError } from '../slide/errors.js';
import { EngineError } from '../infer/vit-engine.js';
import { DataFolderError, PartFileError } from './errors.js';
import { ScoringThreadFailure } from './aggregate-thread.js';

export function isSlideFailure(err: unknown): err is Error {
  return err instanceof SlideError || err instanceof EngineError || err instanceof DataFolderError || err instanceof PartFileError || err instanceof ScoringThreadFailure;
}
