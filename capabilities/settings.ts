/**
 * Module settings, from environment variables (package.json "pepr.env" when deployed, the shell
 * with `npm run module:dev`):
 * - EDGE_UPLOAD_OBC_STORAGE_CLASS: storage class of the claims (default openshift-storage.noobaa.io)
 * - EDGE_UPLOAD_CREATE_OBC: default of spec.storage.s3.createOBC: "auto" (on when the
 *   objectbucket.io API is served; the default), "true" or "false"
 * - EDGE_UPLOAD_RESYNC_SECONDS: every device is reconciled again this often (default 60)
 */
export interface ModuleSettings {
  obcStorageClass: string;
  createObcDefault: "auto" | "true" | "false";
  resyncSeconds: number;
}

export function readSettings(
  env: Record<string, string | undefined> = process.env,
): ModuleSettings {
  const create = env.EDGE_UPLOAD_CREATE_OBC ?? "auto";
  const resync = Number(env.EDGE_UPLOAD_RESYNC_SECONDS ?? 60);
  return {
    obcStorageClass: env.EDGE_UPLOAD_OBC_STORAGE_CLASS || "openshift-storage.noobaa.io",
    createObcDefault: create === "true" || create === "false" ? create : "auto",
    resyncSeconds: Number.isFinite(resync) && resync >= 5 ? resync : 60,
  };
}

/** Whether a device wants an OBC: its own createOBC, else the module default. */
export function wantsObc(
  createOBC: boolean | undefined,
  settings: ModuleSettings,
  obcApiServed: boolean,
): boolean {
  if (createOBC !== undefined) return createOBC;
  if (settings.createObcDefault === "auto") return obcApiServed;
  return settings.createObcDefault === "true";
}
