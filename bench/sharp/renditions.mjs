// Immich's renditions with sharp, one thread: bench/metadata.py runs this beside Shoebox.
//
// Usage: node renditions.mjs FILES.json ROUNDS PASSES
// FILES.json lists the files; a round is PASSES passes over those sharp can render. Prints one
// JSON line: {"rate": the best round's files/s, "failed": [files sharp could not render]}.
//
// What Immich's media service does per photo (decodeImage + generateThumbnail): decode once,
// rotated by EXIF, resized so the short side is 1440 px (fit "outside", never enlarged) into raw
// pixels; the preview is those pixels as JPEG q80, the thumbnail those pixels resized to a short
// side of 250 px, JPEG q80.
import { readFileSync } from "node:fs";
import sharp from "sharp";

sharp.concurrency(1);
sharp.cache(false);

const PREVIEW = 1440;
const THUMBNAIL = 250;
const QUALITY = 80;

async function render(path) {
  const { data, info } = await sharp(path, { failOn: "truncated" })
    .rotate()
    .resize(PREVIEW, PREVIEW, { fit: "outside", withoutEnlargement: true })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: info.width, height: info.height, channels: info.channels } };
  const preview = await sharp(data, raw).jpeg({ quality: QUALITY }).toBuffer();
  const thumbnail = await sharp(data, raw)
    .resize(THUMBNAIL, THUMBNAIL, { fit: "outside", withoutEnlargement: true })
    .jpeg({ quality: QUALITY })
    .toBuffer();
  return preview.length + thumbnail.length;
}

const [filesJson, roundsArg, passesArg] = process.argv.slice(2);
const files = JSON.parse(readFileSync(filesJson, "utf8"));
const rounds = Number(roundsArg || 3);
const passes = Number(passesArg || 1);
const failed = [];
const good = [];
for (const path of files) {  // warm up, and find what sharp cannot read
  try {
    await render(path);
    good.push(path);
  } catch {
    failed.push(path);
  }
}
let best = 0;
for (let r = 0; r < rounds; r++) {
  const start = process.hrtime.bigint();
  for (let p = 0; p < passes; p++) for (const path of good) await render(path);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  best = Math.max(best, (passes * good.length) / seconds);
}
console.log(JSON.stringify({ rate: best, failed }));
