/** Messages between OrtRunner (main thread) and its onnxruntime worker. */

export interface WireTensor {
  data: Float32Array | Int32Array;
  shape: number[];
}

/**
 * Places an output's values into a slot along one axis, starting at `at` (the slot's other
 * dimensions equal the output's): how a decoder appends a step's keys/values to its KV cache in
 * place instead of passing the whole cache out and back in.
 */
export interface SlotWrite {
  slot: string;
  axis: number;
  at: number;
}

/** Makes slot `name` `size` long along `axis`: zero-filled if empty, its prefix kept if not. */
export interface SlotResize {
  axis: number;
  size: number;
  /** The slot's shape when it has to be created (its `axis` entry is replaced by `size`). */
  shape: number[];
}

export type Request = { id: number } & (
  | { type: 'create'; key: string; bytes: Uint8Array; providers: string[] }
  | {
      type: 'run';
      key: string;
      /** Inputs sent with the request. */
      feeds: Record<string, WireTensor>;
      /** Inputs read from the worker's slots: input name -> slot. */
      slotFeeds: Record<string, string>;
      /** Outputs kept in the worker: output name -> slot. */
      store: Record<string, string>;
      /** Outputs sent back. */
      fetch: string[];
      /** Slots resized before the run (output name unrelated: slot name -> size). */
      resize?: Record<string, SlotResize>;
      /** Outputs written into slots after the run: output name -> where. */
      write?: Record<string, SlotWrite>;
    }
  | { type: 'setSlot'; name: string; tensor: WireTensor }
  | { type: 'getSlot'; name: string }
  | { type: 'drop'; key: string }
);

export type Response = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
