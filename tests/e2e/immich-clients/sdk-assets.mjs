// Drives Shoebox through Immich's own SDK (@immich/sdk) the way Immich's web app edits assets:
// the server's storage, statistics and version routes, favourites, archive, description and
// rating, the trash (delete, restore, empty), and one refused update read through the SDK's
// own error type.
// Input: SHOEBOX_URL (…/api), SHOEBOX_KEY (API key), ASSET_IDS (three uploaded assets, comma-separated).
// Output: one JSON object on stdout; on an unexpected API error the status and body on stderr, exit 1.
import {
  deleteAssets,
  emptyTrash,
  getAssetInfo,
  getServerStatistics,
  getStorage,
  getVersionCheck,
  getVersionHistory,
  init,
  isHttpError,
  restoreAssets,
  restoreTrash,
  searchAssets,
  updateAsset,
  updateAssets,
} from '@immich/sdk';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const ids = async (dto) =>
  (await searchAssets({ metadataSearchDto: { size: 1000, ...dto } })).assets.items.map((a) => a.id).sort();

const main = async () => {
  init({ baseUrl: env('SHOEBOX_URL'), apiKey: env('SHOEBOX_KEY') });
  const [a, b, c] = env('ASSET_IDS').split(',');
  const [storage, statistics, versionCheck, versionHistory] = await Promise.all([
    getStorage(),
    getServerStatistics(),
    getVersionCheck(),
    getVersionHistory(),
  ]);

  const updated = await updateAsset({
    id: a,
    updateAssetDto: { isFavorite: true, description: 'Dinner', rating: 4, visibility: 'archive' },
  });
  await updateAssets({ assetBulkUpdateDto: { ids: [b, c], isFavorite: true } });
  const favorites = await ids({ isFavorite: true });
  const archived = await ids({ visibility: 'archive' });
  let refused = null;
  try {
    await updateAsset({ id: b, updateAssetDto: { rating: 9 } });
  } catch (error) {
    if (!isHttpError(error)) throw error;
    refused = { status: error.status, message: error.data.message };
  }

  await deleteAssets({ assetBulkDeleteDto: { ids: [b] } });
  const trashed = await getAssetInfo({ id: b });
  const withoutTrashed = await ids({});
  const restoredOne = await restoreAssets({ bulkIdsDto: { ids: [b] } });
  await deleteAssets({ assetBulkDeleteDto: { ids: [b, c] } });
  const restoredAll = await restoreTrash();
  await deleteAssets({ assetBulkDeleteDto: { ids: [c] } });
  const emptied = await emptyTrash();
  let gone = null;
  try {
    await getAssetInfo({ id: c });
  } catch (error) {
    if (!isHttpError(error)) throw error;
    gone = error.status;
  }
  const left = await ids({});

  console.log(
    JSON.stringify({
      storage,
      statistics,
      versionCheck,
      versionHistory,
      updated: {
        isFavorite: updated.isFavorite,
        isArchived: updated.isArchived,
        visibility: updated.visibility,
        description: updated.exifInfo.description,
        rating: updated.exifInfo.rating,
      },
      favorites,
      archived,
      refused,
      trashed: trashed.isTrashed,
      withoutTrashed,
      restoredOne,
      restoredAll,
      emptied,
      gone,
      left,
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
