// Listens to Shoebox as Immich's web app does (socket.io-client on /api/socket.io, WebSocket only)
// while @immich/sdk scans an external library; then reads the assets and the job queues through
// the SDK. Input: SHOEBOX_URL (…/api), SHOEBOX_KEY (API key), LIBRARY_ID, EXPECTED (count).
// Output: one JSON object on stdout; on an API error the status and body on stderr, exit 1.
import { getAssetInfo, getQueuesLegacy, init, isHttpError, scanLibrary } from '@immich/sdk';
import { io } from 'socket.io-client';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const within = (ms, what, promise) =>
  Promise.race([
    promise,
    // unref: a timer that has lost the race must not keep Node running
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref()),
  ]);

const main = async () => {
  const url = env('SHOEBOX_URL');
  const key = env('SHOEBOX_KEY');
  const expected = Number(env('EXPECTED'));
  init({ baseUrl: url, apiKey: key });

  const socket = io(new URL(url).origin, {
    path: '/api/socket.io',
    transports: ['websocket'],
    reconnection: false,
    extraHeaders: { 'x-api-key': key },
  });
  const uploads = [];
  let allArrived;
  const arrived = new Promise((resolve) => (allArrived = resolve));
  socket.on('on_upload_success', (asset) => {
    uploads.push(asset);
    if (uploads.length >= expected) allArrived();
  });
  const version = await within(10_000, 'on_server_version', new Promise((resolve) => socket.on('on_server_version', resolve)));

  await scanLibrary({ id: env('LIBRARY_ID') });
  await within(60_000, `${expected} on_upload_success`, arrived);
  socket.close();

  const assets = await Promise.all(uploads.map(({ id }) => getAssetInfo({ id })));
  const queues = await getQueuesLegacy();
  console.log(
    JSON.stringify({
      version,
      uploads: uploads.map(({ id, originalPath, thumbhash }) => ({ id, originalPath, thumbhash })),
      assets: assets.map(({ id, thumbhash, originalPath }) => ({ id, thumbhash, originalPath })),
      queues,
    }),
  );
};

main().catch((error) => {
  if (isHttpError(error)) {
    console.error(`HTTP ${error.status}: ${JSON.stringify(error.data)}`);
  } else {
    console.error(error);
  }
  process.exit(1);
});
