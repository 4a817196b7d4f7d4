import type { TrainConfig } from '../config/schema.js';

/** Learning rate at optimizer step `step` (1-based): linear warm-up, then constant or cosine decay. */
export function learningRate(c: Pick<TrainConfig, 'lr' | 'warmup_steps' | 'schedule' | 'steps' | 'min_lr_ratio'>, step: number): number {
  if (c.warmup_steps > 0 && step <= c.warmup_steps) return (c.lr * step) / c.warmup_steps;
  if (c.schedule === 'constant') return c.lr;
  const span = Math.max(1, c.steps - c.warmup_steps);
  const progress = Math.min(1, (step - c.warmup_steps) / span);
  return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
