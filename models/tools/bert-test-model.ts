/**
 * Test stand-in for bert-base-chinese with the standard Hugging Face BERT ONNX export signature:
 * inputs `input_ids`, `attention_mask`, `token_type_ids` int64 [N,L]; outputs `last_hidden_state`
 * float32 [N,L,H] and `pooler_output` [N,H]. The architecture is BERT's, only small: word +
 * position + token-type embeddings with LayerNorm, two post-LN encoder layers (multi-head
 * self-attention with the additive padding mask, GELU feed-forward), and the pooler (dense + tanh
 * over the [CLS] state). H is 24, not 768, so nothing downstream can get away with assuming 768.
 * Weights are seeded; `bertReferenceForward` recomputes the same network in plain TypeScript.
 */
import { OnnxGraphBuilder, seededRandom } from './onnx-builder.js';

export const BERT_TEST = {
  hidden: 24,
  heads: 2,
  intermediate: 48,
  layers: 2,
  maxPositions: 512,
  typeVocab: 2,
  layerNormEps: 1e-12,
  vocabFile: 'bert-test-vocab.txt',
  /**
   * Rows of the word-embedding table: bert-base-chinese's real vocabulary (21,128 entries,
   * models/bert-base-chinese/vocab.txt), so the stand-in takes every id the real tokenizer gives.
   */
  vocabSize: 21_128,
} as const;

/**
 * The test vocabulary, in id order (vocab.txt line order). Covers the spec's example sentence
 * 双十一花呗提额在哪, some English words and word pieces, and punctuation. The special tokens sit
 * where BERT's vocabularies have them relative to each other ([PAD] first).
 */
export const BERT_TEST_VOCAB: readonly string[] = [
  '[PAD]',
  '[UNK]',
  '[CLS]',
  '[SEP]',
  '[MASK]',
  '!',
  ',',
  '.',
  '?',
  '，',
  '。',
  '？',
  '！',
  '0',
  '1',
  '2',
  '3',
  '11',
  '双',
  '十',
  '一',
  '花',
  '呗',
  '提',
  '额',
  '在',
  '哪',
  '里',
  '我',
  '的',
  '是',
  '什',
  '么',
  '怎',
  '样',
  '开',
  '通',
  '度',
  'the',
  'a',
  'is',
  'how',
  'do',
  'i',
  'raise',
  'my',
  'credit',
  'limit',
  'hello',
  'world',
  'what',
  'where',
  'cafe',
  'play',
  'un',
  '##aff',
  '##able',
  '##ing',
  '##ed',
  '##s',
];

export function bertTestVocabText(): string {
  return `${BERT_TEST_VOCAB.join('\n')}\n`;
}

export interface EncoderLayerWeights {
  q: Float32Array;
  qb: Float32Array; // [H,H] (x·W), [H]
  k: Float32Array;
  kb: Float32Array;
  v: Float32Array;
  vb: Float32Array;
  o: Float32Array;
  ob: Float32Array;
  ln1g: Float32Array;
  ln1b: Float32Array;
  ffIn: Float32Array;
  ffInB: Float32Array; // [H,I], [I]
  ffOut: Float32Array;
  ffOutB: Float32Array; // [I,H], [H]
  ln2g: Float32Array;
  ln2b: Float32Array;
}

export interface BertWeights {
  word: Float32Array; // [V,H]
  position: Float32Array; // [P,H]
  tokenType: Float32Array; // [2,H]
  embLnG: Float32Array;
  embLnB: Float32Array;
  layers: EncoderLayerWeights[];
  pooler: Float32Array; // [H,H]: pooled = tanh(C·W + b)
  poolerB: Float32Array;
}

export function bertTestWeights(seed = 768): BertWeights {
  const rnd = seededRandom(seed);
  const { hidden: H, intermediate: I, layers, maxPositions: P, typeVocab, vocabSize: V } = BERT_TEST;
  const sym = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale);
  const around1 = (n: number) => Float32Array.from({ length: n }, () => 1 + (rnd() * 2 - 1) * 0.2);
  const proj = 1 / Math.sqrt(H);
  return {
    word: sym(V * H, 1),
    position: sym(P * H, 0.5),
    tokenType: sym(typeVocab * H, 0.5),
    embLnG: around1(H),
    embLnB: sym(H, 0.1),
    layers: Array.from({ length: layers }, () => ({
      q: sym(H * H, 2 * proj),
      qb: sym(H, 0.1),
      k: sym(H * H, 2 * proj),
      kb: sym(H, 0.1),
      v: sym(H * H, 2 * proj),
      vb: sym(H, 0.1),
      o: sym(H * H, 2 * proj),
      ob: sym(H, 0.1),
      ln1g: around1(H),
      ln1b: sym(H, 0.1),
      ffIn: sym(H * I, 2 * proj),
      ffInB: sym(I, 0.1),
      ffOut: sym(I * H, 2 / Math.sqrt(I)),
      ffOutB: sym(H, 0.1),
      ln2g: around1(H),
      ln2b: sym(H, 0.1),
    })),
    pooler: sym(H * H, 2 * proj),
    poolerB: sym(H, 0.1),
  };
}

export function buildBertTestModel(w = bertTestWeights()): Uint8Array {
  const { hidden: H, heads, intermediate: I, maxPositions: P, typeVocab, layerNormEps, vocabSize: V } = BERT_TEST;
  const dh = H / heads;
  const g = new OnnxGraphBuilder('bert-test');
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const mask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const types = g.input('token_type_ids', 'int64', ['batch', 'sequence']);
  const f = (dims: number[], data: Float32Array) => g.constant('float32', dims, data);
  const i64 = (dims: number[], data: number[]) => g.constant('int64', dims, data);
  const scalarF = (x: number) => g.constant('float32', [], [x]);
  const layerNorm = (x: string, gamma: Float32Array, beta: Float32Array) =>
    g.op('LayerNormalization', [x, f([H], gamma), f([H], beta)], { axis: -1, epsilon: { float: layerNormEps } });
  const dense = (x: string, wt: Float32Array, b: Float32Array, inDim: number, outDim: number) =>
    g.op('Add', [g.op('MatMul', [x, f([inDim, outDim], wt)]), f([outDim], b)]);

  // Embeddings: word + position (0..L-1) + token type, then LayerNorm.
  const seqLen = g.op('Gather', [g.op('Shape', [ids]), i64([], [1])], { axis: 0 });
  const positions = g.op('Range', [i64([], [0]), seqLen, i64([], [1])]);
  const wordEmb = g.op('Gather', [f([V, H], w.word), ids], { axis: 0 });
  const posEmb = g.op('Gather', [f([P, H], w.position), positions], { axis: 0 });
  const typeEmb = g.op('Gather', [f([typeVocab, H], w.tokenType), types], { axis: 0 });
  let x = layerNorm(g.op('Add', [g.op('Add', [wordEmb, posEmb]), typeEmb]), w.embLnG, w.embLnB);

  // Padding mask, BERT's way: (1 - mask) · -10000 added to every query's scores, shape [N,1,1,L].
  const maskF = g.op('Cast', [mask], { to: 1 });
  const additive = g.op('Mul', [g.op('Sub', [scalarF(1), maskF]), scalarF(-10000)]);
  const maskBias = g.op('Unsqueeze', [additive, i64([2], [1, 2])]);
  const headsShape = i64([4], [0, 0, heads, dh]);
  const mergedShape = i64([3], [0, 0, H]);

  for (const l of w.layers) {
    const split = (t: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [t, headsShape])], { perm });
    const q = split(dense(x, l.q, l.qb, H, H), [0, 2, 1, 3]); // [N,h,L,dh]
    const kT = split(dense(x, l.k, l.kb, H, H), [0, 2, 3, 1]); // [N,h,dh,L]
    const v = split(dense(x, l.v, l.vb, H, H), [0, 2, 1, 3]); // [N,h,L,dh]
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, kT]), scalarF(1 / Math.sqrt(dh))]), maskBias]);
    const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
    const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: [0, 2, 1, 3] }), mergedShape]);
    const attended = layerNorm(g.op('Add', [dense(merged, l.o, l.ob, H, H), x]), l.ln1g, l.ln1b);
    // GELU (erf form): 0.5 · u · (1 + erf(u / √2)).
    const u = dense(attended, l.ffIn, l.ffInB, H, I);
    const erf = g.op('Erf', [g.op('Mul', [u, scalarF(Math.SQRT1_2)])]);
    const gelu = g.op('Mul', [g.op('Mul', [u, scalarF(0.5)]), g.op('Add', [erf, scalarF(1)])]);
    x = layerNorm(g.op('Add', [dense(gelu, l.ffOut, l.ffOutB, I, H), attended]), l.ln2g, l.ln2b);
  }
  g.op('Identity', [x], {}, 'last_hidden_state');
  g.output('last_hidden_state', 'float32', ['batch', 'sequence', H]);

  const cls = g.op('Gather', [x, i64([], [0])], { axis: 1 }); // [N,H]
  g.op('Tanh', [g.op('Gemm', [cls, f([H, H], w.pooler), f([H], w.poolerB)])], {}, 'pooler_output');
  g.output('pooler_output', 'float32', ['batch', H]);
  return g.toBytes();
}

/** pooled = tanh(C·W + b), in float64, for a [CLS] final state C. */
export function bertReferencePooler(cls: ArrayLike<number>, w = bertTestWeights()): Float64Array {
  const H = BERT_TEST.hidden;
  return Float64Array.from({ length: H }, (_, k) => {
    let s = w.poolerB[k];
    for (let j = 0; j < H; j++) s += cls[j] * w.pooler[j * H + k];
    return Math.tanh(s);
  });
}

/**
 * The same network in float64 for one sequence of `ids.length` tokens (mask 1 = real token).
 * Returns every position's final hidden state, row-major [L,H].
 */
export function bertReferenceForward(
  ids: number[],
  typeIds: number[],
  mask: number[],
  w = bertTestWeights(),
): Float64Array {
  const { hidden: H, heads, intermediate: I, layerNormEps } = BERT_TEST;
  const L = ids.length;
  const dh = H / heads;
  const layerNorm = (x: Float64Array, gamma: Float32Array, beta: Float32Array) => {
    const out = new Float64Array(x.length);
    for (let t = 0; t < L; t++) {
      const row = x.subarray(t * H, (t + 1) * H);
      const mean = row.reduce((a, b) => a + b, 0) / H;
      const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / H;
      for (let j = 0; j < H; j++)
        out[t * H + j] = ((row[j] - mean) / Math.sqrt(variance + layerNormEps)) * gamma[j] + beta[j];
    }
    return out;
  };
  const dense = (x: Float64Array, wt: Float32Array, b: Float32Array, inDim: number, outDim: number) => {
    const out = new Float64Array(L * outDim);
    for (let t = 0; t < L; t++) {
      for (let k = 0; k < outDim; k++) {
        let s = b[k];
        for (let j = 0; j < inDim; j++) s += x[t * inDim + j] * wt[j * outDim + k];
        out[t * outDim + k] = s;
      }
    }
    return out;
  };
  let x = new Float64Array(L * H);
  for (let t = 0; t < L; t++) {
    for (let j = 0; j < H; j++)
      x[t * H + j] = w.word[ids[t] * H + j] + w.position[t * H + j] + w.tokenType[typeIds[t] * H + j];
  }
  x = layerNorm(x, w.embLnG, w.embLnB);
  for (const l of w.layers) {
    const q = dense(x, l.q, l.qb, H, H);
    const k = dense(x, l.k, l.kb, H, H);
    const v = dense(x, l.v, l.vb, H, H);
    const context = new Float64Array(L * H);
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < L; t++) {
        const scores = Array.from({ length: L }, (_, s) => {
          let dot = 0;
          for (let d = 0; d < dh; d++) dot += q[t * H + h * dh + d] * k[s * H + h * dh + d];
          return dot / Math.sqrt(dh) + (1 - mask[s]) * -10000;
        });
        const max = Math.max(...scores);
        const e = scores.map((sc) => Math.exp(sc - max));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < dh; d++) {
          let acc = 0;
          for (let s = 0; s < L; s++) acc += (e[s] / sum) * v[s * H + h * dh + d];
          context[t * H + h * dh + d] = acc;
        }
      }
    }
    const attnOut = dense(context, l.o, l.ob, H, H);
    const attended = layerNorm(
      attnOut.map((a, i) => a + x[i]),
      l.ln1g,
      l.ln1b,
    );
    const u = dense(attended, l.ffIn, l.ffInB, H, I);
    const gelu = u.map((a) => 0.5 * a * (1 + erf(a / Math.SQRT2)));
    const ff = dense(gelu, l.ffOut, l.ffOutB, I, H);
    x = layerNorm(
      ff.map((a, i) => a + attended[i]),
      l.ln2g,
      l.ln2b,
    );
  }
  return x;
}

/** erf to ~1e-15 (series for small |x|, continued fraction beyond), enough for a float32 comparison. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 60; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz-free backward evaluation).
  let frac = 0;
  for (let n = 60; n >= 1; n--) frac = n / 2 / (ax + frac);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + frac);
  return Math.sign(x) * (1 - erfc);
}
