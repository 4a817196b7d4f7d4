import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainEngine } from '../engine/engine.js';
import { describeEngine, type EngineChoice } from '../engine/select.js';
import { environmentRecord } from '../run/env.js';
import type { RunDir } from '../run/rundir.js';
import { writeFileAtomic } from '../util/fs.js';
import type { LoopLogger } from './loop.js';

/** What every training stage (pretraining, fine-tuning) does around its loop. */

/**
 * Logs the engine that runs the stage and writes the run's environment record (env.json; a resumed
 * run adds env.resume-<time>.json beside it). Called after load: the ONNX engine knows its
 * execution provider once its worker has started.
 */
export async function recordEngine(run: RunDir, log: LoopLogger, choice: EngineChoice, engine: TrainEngine, resume: boolean, extra: Record<string, unknown>) {
  const device = { engine: choice.engine, device: engine.device, backend_attempts: choice.backend?.attempts, provider_attempts: engine.providerAttempts };
  log.info(device, describeEngine(choice, engine));
  const envFile = resume && existsSync(run.envPath) ? join(run.dir, `env.resume-${Date.now()}.json`) : run.envPath;
  await writeFileAtomic(envFile, JSON.stringify(environmentRecord({ ...device, engine_reason: describeEngine(choice, engine), ...extra }), null, 2) + '\n');
  return device;
}

/**
 * SIGINT/SIGTERM ask the loop to stop after the current step, with a checkpoint; a second signal
 * quits at once. `release` removes the handlers.
 */
export function stopOnSignal(log: LoopLogger): { requested: () => boolean; release: () => void } {
  let stop = false;
  const onSignal = (sig: string) => {
    if (stop) process.exit(130);
    stop = true;
    log.warn({ signal: sig }, 'stopping after this step with a checkpoint (press again to quit at once)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    requested: () => stop,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
