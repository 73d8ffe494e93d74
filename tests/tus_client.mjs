// tus-js-client (a tus client nobody here wrote) against /api/uploads, for
// tests/test_uploads_tus.py:
//   node tests/tus_client.mjs upload    <api> <token> <file> <chunkSize>  -> {"url","mediaId"}
//   node tests/tus_client.mjs terminate <uploadUrl> <token>               -> {"terminated":true}
import { readFileSync } from "node:fs";
import * as tus from "tus-js-client";

const [mode, target, token, file, chunk] = process.argv.slice(2);
const headers = { Authorization: `Bearer ${token}` };

if (mode === "upload") {
  const data = readFileSync(file);
  let mediaId = null;
  const upload = new tus.Upload(data, {
    endpoint: `${target}/api/uploads`,
    chunkSize: Number(chunk),
    headers,
    retryDelays: [],
    metadata: { filename: "clip.mp4", filetype: "video/mp4" },
    onAfterResponse(_req, res) {
      mediaId = res.getHeader("Jestha-Media-Id") || mediaId;
    },
    onError(e) {
      console.error(String(e));
      process.exit(1);
    },
    onSuccess() {
      console.log(JSON.stringify({ url: upload.url, mediaId }));
    },
  });
  upload.start();
} else if (mode === "terminate") {
  tus.Upload.terminate(target, { headers, retryDelays: [] })
    .then(() => console.log(JSON.stringify({ terminated: true })))
    .catch((e) => {
      console.error(String(e));
      process.exit(1);
    });
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
