// Drives Shoebox through Immich's own SDK (@immich/sdk), the way an Immich admin script would:
// create an external library, validate it, scan it, wait for the scan, list what it found.
// Input: SHOEBOX_URL (…/api), SHOEBOX_KEY (API key), OWNER_ID, IMPORT_PATH, EXPECTED (count).
// Output: one JSON object on stdout; on an API error the status and body on stderr, exit 1.
import {
  createLibrary,
  getLibraryStatistics,
  getMapMarkers,
  getMyUser,
  getServerVersion,
  getSupportedMediaTypes,
  getTimeBuckets,
  init,
  isHttpError,
  scanLibrary,
  searchAssets,
  validate,
} from '@immich/sdk';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const main = async () => {
  init({ baseUrl: env('SHOEBOX_URL'), apiKey: env('SHOEBOX_KEY') });
  const importPath = env('IMPORT_PATH');
  const expected = Number(env('EXPECTED'));
  const [version, mediaTypes, me] = await Promise.all([getServerVersion(), getSupportedMediaTypes(), getMyUser()]);
  const library = await createLibrary({
    createLibraryDto: { ownerId: env('OWNER_ID'), name: 'SDK library', importPaths: [importPath] },
  });
  const validation = await validate({
    id: library.id,
    validateLibraryDto: { importPaths: [importPath, `${importPath}/does-not-exist`], exclusionPatterns: [] },
  });
  await scanLibrary({ id: library.id });
  // Immich's scans run in the background: poll the statistics, as Immich's e2e helpers do.
  let statistics = await getLibraryStatistics({ id: library.id });
  const deadline = Date.now() + 60_000;
  while (statistics.total < expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    statistics = await getLibraryStatistics({ id: library.id });
  }
  const found = await searchAssets({ metadataSearchDto: { libraryId: library.id, size: 1000, order: 'asc' } });
  const buckets = await getTimeBuckets({});
  const markers = await getMapMarkers({});
  console.log(
    JSON.stringify({
      version,
      imageTypes: mediaTypes.image.length,
      user: me.email,
      library,
      validation,
      statistics,
      total: found.assets.total,
      assets: found.assets.items.map(({ id, originalPath, originalFileName, libraryId, isOffline, type, checksum }) => ({
        id,
        originalPath,
        originalFileName,
        libraryId,
        isOffline,
        type,
        checksum,
      })),
      buckets,
      markers,
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
