/** Messages between OrtRunner (main thread) and its onnxruntime worker. */

export interface WireTensor {
  data: Float32Array | Int32Array;
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
    }
  | { type: 'setSlot'; name: string; tensor: WireTensor }
  | { type: 'getSlot'; name: string }
  | { type: 'drop'; key: string }
);

export type Response = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
