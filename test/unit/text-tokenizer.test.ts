import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer, WordPiece, bertNormalizer, bertPreTokenizer, bertProcessing } from 'tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { SpecError } from '../../shared/errors.js';
import { TextPreprocessSchema, type TextPreprocess } from '../../shared/manifest.js';
import { loadConfig } from '../../shared/config.js';
import { BERT_TEST } from '../../models/tools/bert-test-model.js';
import { BertTextTokenizer, longestFirstLengths, readVocabFile } from '../../worker/tasks/text/tokenizer.js';

const vocabFile = path.join(loadConfig().MODELHUB_GENERATED_DIR, BERT_TEST.vocabFile);
const defaults = (over: Partial<TextPreprocess> = {}) => TextPreprocessSchema.parse(over);

/** Expected ids straight from the vocabulary file: a token's id is its line number. */
let lineOf: (token: string) => number;

beforeAll(() => {
  const lines = fs.readFileSync(vocabFile, 'utf8').split('\n');
  lineOf = (token) => {
    const id = lines.indexOf(token);
    if (id < 0) throw new Error(`test vocabulary has no ${token}`);
    return id;
  };
});

describe('BertTextTokenizer (vocab.txt)', () => {
  it('tokenizes the spec example into one token per Chinese character, between [CLS] and [SEP]', async () => {
    const tk = BertTextTokenizer.fromFile(vocabFile, defaults());
    const enc = await tk.encode('双十一花呗提额在哪', '', 128);
    const expected = ['[CLS]', ...'双十一花呗提额在哪', '[SEP]'];
    expect(enc.tokens).toEqual(expected);
    expect(enc.ids).toEqual(expected.map(lineOf));
    expect(enc.typeIds).toEqual(expected.map(() => 0));
    expect(tk.padId).toBe(lineOf('[PAD]'));
  });

  it('places a sentence pair as [CLS] A [SEP] B [SEP] with token types 0 then 1', async () => {
    const tk = BertTextTokenizer.fromFile(vocabFile, defaults());
    const enc = await tk.encode('Hello, world!', '花呗在哪里？', 128);
    const expected = ['[CLS]', 'hello', ',', 'world', '!', '[SEP]', '花', '呗', '在', '哪', '里', '？', '[SEP]'];
    expect(enc.tokens).toEqual(expected);
    expect(enc.ids).toEqual(expected.map(lineOf));
    expect(enc.typeIds).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('splits words into word pieces and maps unknown words to [UNK]', async () => {
    const tk = BertTextTokenizer.fromFile(vocabFile, defaults());
    const enc = await tk.encode('unaffable playing zebra', '', 32);
    expect(enc.tokens).toEqual(['[CLS]', 'un', '##aff', '##able', 'play', '##ing', '[UNK]', '[SEP]']);
    expect(enc.ids).toEqual(enc.tokens.map(lineOf));
  });

  it('follows the manifest: lower-casing, accents and Chinese character splitting', async () => {
    const cased = BertTextTokenizer.fromFile(vocabFile, defaults({ lowercase: false }));
    expect((await cased.encode('Hello world', '', 16)).tokens).toEqual(['[CLS]', '[UNK]', 'world', '[SEP]']);
    const lower = BertTextTokenizer.fromFile(vocabFile, defaults());
    expect((await lower.encode('HELLO Café', '', 16)).tokens).toEqual(['[CLS]', 'hello', 'cafe', '[SEP]']);
    const noSplit = BertTextTokenizer.fromFile(vocabFile, defaults({ split_chinese_chars: false }));
    // Without splitting, the sentence is one word that WordPiece cannot cover.
    expect((await noSplit.encode('双十一花呗提额在哪', '', 16)).tokens).toEqual(['[CLS]', '[UNK]', '[SEP]']);
  });

  it('truncates to sequence_length, keeping the start of the text and the closing [SEP]', async () => {
    const tk = BertTextTokenizer.fromFile(vocabFile, defaults());
    const enc = await tk.encode('双十一花呗提额在哪', '', 5);
    expect(enc.tokens).toEqual(['[CLS]', '双', '十', '一', '[SEP]']);
    expect((await tk.encode('双十一', '', 2)).tokens).toEqual(['[CLS]', '[SEP]']);
  });

  it('refuses a sequence_length with no room for the special tokens', async () => {
    const tk = BertTextTokenizer.fromFile(vocabFile, defaults());
    await expect(tk.encode('双', '', 1)).rejects.toBeInstanceOf(SpecError);
    await expect(tk.encode('双', '十', 2)).rejects.toMatchObject({ kind: 'INVALID_INPUT' });
  });

  it('truncates pairs longest-first exactly as the tokenizers library does', async () => {
    const tk = BertTextTokenizer.fromFile(vocabFile, defaults());
    // The library's own truncation, on a tokenizer built the same way, as the reference.
    const reference = new Tokenizer(WordPiece.init(readVocabFile(vocabFile), { unkToken: '[UNK]' }));
    reference.setNormalizer(bertNormalizer({ lowercase: true, handleChineseChars: true }));
    reference.setPreTokenizer(bertPreTokenizer());
    reference.setPostProcessor(bertProcessing(['[SEP]', lineOf('[SEP]')], ['[CLS]', lineOf('[CLS]')]));
    const a = '双十一花呗提额在哪里我的是什么';
    const b = 'how do i raise my credit limit';
    const pairs: [string, string][] = [
      [a, b],
      [b, a],
      [a.slice(0, 3), b],
      [a, 'hello'],
      ['双十', '一花'],
    ];
    for (const [first, second] of pairs) {
      for (const length of [3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 30]) {
        reference.setTruncation(length, { strategy: 'LongestFirst' as never });
        const want = await reference.encode(first, second);
        const got = await tk.encode(first, second, length);
        expect({ first, second, length, tokens: got.tokens, types: got.typeIds }).toEqual({
          first,
          second,
          length,
          tokens: want.getTokens(),
          types: want.getTypeIds(),
        });
      }
    }
  });
});

describe('BertTextTokenizer (tokenizer.json)', () => {
  it('gives the same ids as the vocab.txt it was exported from, with the manifest normalization', async () => {
    // A tokenizer.json as Hugging Face ships bert-base-chinese's: lowercase false in the file.
    const exported = new Tokenizer(WordPiece.init(readVocabFile(vocabFile), { unkToken: '[UNK]' }));
    exported.setNormalizer(bertNormalizer({ lowercase: false, handleChineseChars: true }));
    exported.setPreTokenizer(bertPreTokenizer());
    exported.setPostProcessor(bertProcessing(['[SEP]', lineOf('[SEP]')], ['[CLS]', lineOf('[CLS]')]));
    exported.setTruncation(4);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelhub-tok-'));
    const jsonFile = path.join(dir, 'tokenizer.json');
    exported.save(jsonFile);

    const fromJson = BertTextTokenizer.fromFile(jsonFile, defaults());
    const fromVocab = BertTextTokenizer.fromFile(vocabFile, defaults());
    for (const [first, second] of [
      ['Hello World 双十一', ''],
      ['双十一花呗提额在哪', 'HOW do I raise my credit limit?'],
    ] as const) {
      const j = await fromJson.encode(first, second, 64);
      const v = await fromVocab.encode(first, second, 64);
      expect(j).toEqual(v);
      // The file's own truncation (4) is not applied: lengths are per request.
      expect(j.ids.length).toBeGreaterThan(4);
    }
    fs.rmSync(dir, { recursive: true });
  });
});

describe('longestFirstLengths', () => {
  it('keeps both when they fit, shortens the longer first, then halves', () => {
    expect(longestFirstLengths(3, 4, 10)).toEqual([3, 4]);
    expect(longestFirstLengths(2, 20, 10)).toEqual([2, 8]);
    expect(longestFirstLengths(20, 2, 10)).toEqual([8, 2]);
    expect(longestFirstLengths(20, 30, 9)).toEqual([4, 5]);
    expect(longestFirstLengths(5, 0, 3)).toEqual([3, 0]);
  });

  it('matches the library on every split of two texts of up to 12 tokens, with and without [CLS]/[SEP]', async () => {
    const tk = new Tokenizer(WordPiece.init({ a: 0, b: 1, '[UNK]': 2, '[CLS]': 3, '[SEP]': 4 }, { unkToken: '[UNK]' }));
    tk.setPreTokenizer(bertPreTokenizer());
    for (const specials of [0, 3]) {
      if (specials) tk.setPostProcessor(bertProcessing(['[SEP]', 4], ['[CLS]', 3]));
      for (let n1 = 0; n1 <= 12; n1++) {
        for (let n2 = 1; n2 <= 12; n2++) {
          for (let maxLength = specials + 1; maxLength <= n1 + n2 + specials; maxLength++) {
            tk.setTruncation(maxLength, { strategy: 'LongestFirst' as never });
            const tokens = (await tk.encode(Array(n1).fill('a').join(' '), Array(n2).fill('b').join(' '))).getTokens();
            const want = [tokens.filter((t) => t === 'a').length, tokens.filter((t) => t === 'b').length];
            const got = longestFirstLengths(n1, n2, maxLength - specials, maxLength);
            expect({ n1, n2, maxLength, split: got }).toEqual({ n1, n2, maxLength, split: want });
          }
        }
      }
    }
  });
});
