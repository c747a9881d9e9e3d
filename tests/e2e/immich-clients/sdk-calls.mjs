// Calls @immich/sdk functions one after another and reports each outcome, the way a client
// sees it: the value, or the SDK's own reading of an error (isHttpError: status and data).
// Input: SHOEBOX_URL (…/api), SHOEBOX_KEY (API key), CALLS: a JSON array of
// {"fn": "<sdk function>", "args": {...}, "key": "<another API key>"?}.
// Output: one JSON array on stdout, one {"ok": value} or {"status", "data"} per call.
import * as sdk from '@immich/sdk';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const main = async () => {
  sdk.init({ baseUrl: env('SHOEBOX_URL'), apiKey: env('SHOEBOX_KEY') });
  const results = [];
  for (const { fn, args, key } of JSON.parse(env('CALLS'))) {
    if (typeof sdk[fn] !== 'function') throw new Error(`@immich/sdk has no function ${fn}`);
    const opts = key ? { headers: { 'x-api-key': key } } : undefined;
    try {
      results.push({ ok: (await sdk[fn](args ?? {}, opts)) ?? null });
    } catch (error) {
      if (!sdk.isHttpError(error)) throw error;
      results.push({ status: error.status, data: error.data });
    }
  }
  console.log(JSON.stringify(results));
};

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
